"""One registry pattern for every pluggable kind: attacks, defenses, students, tasks.

A kind is registered by name with a decorator; other packages add their own through the
entry-point group ``extractbench.<kind>`` (a module to import, which registers on import).
Entry points are loaded lazily, the first time a registry is looked up.

Parameters are typed: a plugin declares them as a pydantic model next to it, a subclass of
:class:`PluginParams` (every field with a default and a ``Field(description=...)``, defaults
equal to the plugin's own), and names it when it registers::

    class RandomPoolParams(PluginParams):
        batch: int = Field(default=32, description="prompts in flight per round")

    @ATTACKS.register("random-pool", params=RandomPoolParams)
    def make_random_pool(**params: Any) -> RandomPool: ...

The model only *checks* parameters (names and types, strictly: ``"5"`` is not an integer);
the plugin is still built from the parameters as given, so ``REG.get(name)(**params)`` and
:meth:`Registry.create` build the same object. Range checks stay in the plugin's constructor.
"""

from __future__ import annotations

import importlib
import inspect
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from extractbench.errors import ExtractbenchError

__all__ = ["Entry", "ParamsError", "PluginParams", "Registry", "UnknownNameError"]

T = TypeVar("T")
R = TypeVar("R")


class UnknownNameError(ExtractbenchError, KeyError):
    """A scenario or command named something no registry holds."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.kind, self.name, self.known = kind, name, known

    def __str__(self) -> str:
        return f"unknown {self.kind} {self.name!r} (known: {', '.join(self.known) or 'none'})"


class ParamsError(ExtractbenchError, ValueError):
    """Parameters a plugin does not take, or of the wrong type; ``problems`` are one-line
    ``field.path: problem`` strings."""

    def __init__(self, kind: str, name: str, problems: list[str]) -> None:
        super().__init__(f"{kind} {name}: {'; '.join(problems)}")
        self.kind, self.name, self.problems = kind, name, problems


class PluginParams(BaseModel):
    """Base class of a plugin's parameter model: unknown names are errors, values are checked
    strictly (no string-to-number coercion), instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    description: str
    params: type[BaseModel] | None = None
    """The parameter model (``None``: undeclared, e.g. a third-party plugin)."""

    def validate_params(self, params: Mapping[str, Any] | None, where: str = "") -> list[str]:
        """Problems with ``params``, one line each: ``where.field: problem``."""
        given = {} if params is None else params
        if not isinstance(given, Mapping):
            return [f"{where or 'params'}: expected a mapping of parameters, got {given!r}"]
        if self.params is None:
            return self._signature_problems(given, where)
        try:
            self.params.model_validate(dict(given))
        except ValidationError as exc:
            return _format(exc, self.params, self.name, given, where)
        return []

    def _signature_problems(self, params: Mapping[str, Any], where: str) -> list[str]:
        """Without a model: names the plugin's signature does not take (none when it takes
        ``**kwargs``)."""
        try:
            sig = inspect.signature(self.obj)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return []
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
            return []
        named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        allowed = [n for n, p in sig.parameters.items() if p.kind in named]
        return [f"{_join(where, k)}: unknown parameter ({self.name} takes: "
                f"{', '.join(sorted(allowed)) or 'none'})" for k in params if k not in allowed]

    def params_help(self, indent: str = "    ") -> list[str]:
        """One line per parameter: ``name (type, default X): description``."""
        if self.params is None:
            return [f"{indent}(parameters not declared)"]
        fields = self.params.model_fields
        if not fields:
            return [f"{indent}(no parameters)"]
        out = []
        for name, f in fields.items():
            default = "required" if f.is_required() else f"default {_show(f.get_default())}"
            desc = f": {f.description}" if f.description else ""
            out.append(f"{indent}{name} ({type_name(f.annotation)}, {default}){desc}")
        return out


class Registry(Generic[T]):
    """Name -> factory, filled by :meth:`register` and by entry points."""

    def __init__(self, kind: str, builtin_modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._builtin = builtin_modules
        self._loaded = False

    def register(self, name: str, description: str = "",
                 params: type[BaseModel] | None = None) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name`` (its docstring's first line describes
        it) with ``params``, the model of the parameters it takes."""

        def deco(obj: T) -> T:
            doc = description or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
            self._entries[name] = Entry(name, obj, doc, params)
            return obj

        return deco

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for mod in self._builtin:
            importlib.import_module(mod)
        for ep in entry_points(group=f"extractbench.{self.kind}s"):
            ep.load()

    def entry(self, name: str) -> Entry[T]:
        self._load()
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, self.names())
        return self._entries[name]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def params_model(self, name: str) -> type[BaseModel] | None:
        """The parameter model of ``name`` (``None`` when it declares none)."""
        return self.entry(name).params

    def validate_params(self, name: str, params: Mapping[str, Any] | None,
                        where: str = "") -> list[str]:
        """Problems with ``params`` for ``name``, one line each naming the field (``where``
        prefixes the field path, e.g. ``attacks.rp.params``); empty when they are fine.
        Raises :class:`UnknownNameError` for an unknown ``name``."""
        return self.entry(name).validate_params(params, where)

    def create(self: Registry[Callable[..., R]], name: str,
               params: Mapping[str, Any] | None = None, *args: Any) -> R:
        """Check ``params`` and build ``name``: ``factory(*args, **params)`` (for tasks the
        ``args`` are the seed and the split sizes). Raises :class:`ParamsError` for an unknown
        or mistyped parameter; the plugin's own (range) checks raise as they always did."""
        problems = self.validate_params(name, params, "params")
        if problems:
            raise ParamsError(self.kind, name, problems)
        return self.get(name)(*args, **dict(params or {}))

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        self._load()
        return [self._entries[n] for n in sorted(self._entries)]


# -- messages -------------------------------------------------------------------------------


def _join(where: str, field: str) -> str:
    return ".".join(p for p in (where, field) if p) or "params"


def _format(exc: ValidationError, model: type[BaseModel], plugin: str,
            given: Mapping[str, Any], where: str) -> list[str]:
    """One line per bad parameter: unknown names, missing required ones, and values of the
    wrong type (``expected an integer, got 'x'``, from the field's type)."""
    fields = model.model_fields
    takes = ", ".join(sorted(fields)) or "none"
    out: list[str] = []
    done: set[str] = set()
    for e in exc.errors():
        loc = e["loc"]
        field = str(loc[0]) if loc else ""
        if field in done:
            continue
        kind = e["type"]
        if kind == "extra_forbidden":
            out.append(f"{_join(where, field)}: unknown parameter ({plugin} takes: {takes})")
        elif kind == "missing":
            out.append(f"{_join(where, field)}: missing required parameter "
                       f"({_describe(fields[field])})")
        elif field in fields and _is_type_error(kind):
            out.append(f"{_join(where, field)}: expected {expected(fields[field].annotation)}, "
                       f"got {given.get(field)!r}")
        else:
            path = ".".join(str(p) for p in loc[:1] + tuple(
                p for p in loc[1:] if isinstance(p, int) or not _is_type_tag(p)))
            out.append(f"{_join(where, path)}: {e['msg']}")
        done.add(field)
    return out


def _is_type_error(kind: str) -> bool:
    return (kind.endswith(("_type", "_parsing")) or kind in {"literal_error", "enum",
            "is_instance_of", "union_tag_invalid", "none_required"})


def _is_type_tag(p: object) -> bool:
    """A union member's name pydantic puts in an error's location (``list[str]``, ``int``)."""
    return isinstance(p, str) and (any(c in p for c in "[]|'")
                                   or p in {"int", "float", "str", "bool", "none"})


def _describe(f: FieldInfo) -> str:
    return f.description or type_name(f.annotation)


def _show(value: Any) -> str:
    """A value as it would be written in a scenario: ``null``, ``true``, ``32``, ``'strip'``,
    ``['+']``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)


def _members(annotation: Any) -> tuple[Any, ...] | None:
    """The members of a union annotation, or ``None`` when it is not a union."""
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return None


_NAMES = {int: "int", float: "float", bool: "bool", str: "str", dict: "mapping",
          type(None): "null"}


def type_name(annotation: Any) -> str:
    """A short name of a parameter's type: ``int``, ``float | null``, ``list[str]``,
    ``'strip' | 'summary'``."""
    members = _members(annotation)
    if members is not None:
        names = list(dict.fromkeys(type_name(m) for m in members))
        return " | ".join(names)
    origin = get_origin(annotation)
    if origin is Literal:
        return " | ".join(_show(a) for a in get_args(annotation))
    if origin in (list, tuple):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return f"list[{type_name(args[0])}]" if args else "list"
    if origin is dict:
        return "mapping"
    if annotation in _NAMES:
        return _NAMES[annotation]
    return getattr(annotation, "__name__", str(annotation))


_EXPECTED = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
             dict: "a mapping", type(None): "null"}


def expected(annotation: Any) -> str:
    """What a value of ``annotation`` is, for an error message: ``an integer``, ``a number or
    null``, ``a list of strings``, ``one of 'strip', 'summary'``."""
    members = _members(annotation)
    if members is not None:
        return " or ".join(dict.fromkeys(expected(m) for m in members))
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(_show(a) for a in get_args(annotation))
    if origin in (list, tuple):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        if not args:
            return "a list"
        item = expected(args[0])
        plural = {"an integer": "integers", "a number": "numbers", "a string": "strings",
                  "true or false": "booleans", "a mapping": "mappings"}.get(item)
        return f"a list of {plural}" if plural else f"a list (each {item})"
    if origin is dict:
        return "a mapping"
    return _EXPECTED.get(annotation, type_name(annotation))
