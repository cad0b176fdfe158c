"""One registry pattern for every pluggable kind: attacks, defenses, students, tasks.

A kind is registered by name with a decorator; other packages add their own through the
entry-point group ``extractbench.<kind>`` (a module to import, which registers on import).
Entry points are loaded lazily, the first time a registry is looked up.

Parameters are typed: a plugin declares them as a pydantic model next to it, a subclass of
:class:`PluginParams` (every field with a default and a ``Field(description=...)``, defaults
equal to the plugin's own), and names it when it registers::

    class RandomPoolParams(PluginParams):
        batch: int = Field(default=32, ge=1, le=1024, description="prompts in flight per "
                           "round, 1..1024")

    @ATTACKS.register("random-pool", params=RandomPoolParams)
    def make_random_pool(**params: Any) -> RandomPool: ...

The model *checks* parameters: names, types (strictly: ``"5"`` is not an integer) and values.
Every number has a range (``Field(ge=1, le=12)``) a run can honour, and rules between fields
are model validators that raise :func:`rule_error` naming the field, so ``extractbench
validate`` reports each problem as one line (``students.s.params.n_layers: must be an integer
in [1, 12], got 0``). The plugin is still built from the parameters as given, so
``REG.get(name)(**params)`` and :meth:`Registry.create` build the same object; a plugin's
constructor keeps its own checks for direct construction.
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
from pydantic_core import PydanticCustomError

from extractbench.errors import ExtractbenchError

__all__ = ["Entry", "ParamsError", "PluginParams", "Registry", "UnknownNameError", "bounds",
           "range_text", "rule_error"]

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
    """Parameters a plugin does not take, of the wrong type or out of range; ``problems`` are
    one-line ``field.path: problem`` strings."""

    def __init__(self, kind: str, name: str, problems: list[str]) -> None:
        super().__init__(f"{kind} {name}: {'; '.join(problems)}")
        self.kind, self.name, self.problems = kind, name, problems


class PluginParams(BaseModel):
    """Base class of a plugin's parameter model: unknown names are errors, values are checked
    strictly (no string-to-number coercion), instances are immutable. Give every number a
    range (``Field(ge=..., le=...)``) and say it in the description."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


RULE = "param_rule"
"""The error type of :func:`rule_error`."""


def rule_error(field: str, message: str) -> PydanticCustomError:
    """The error a parameter model's validator raises for a rule between fields: ``message``
    is reported on ``field``'s line, e.g. ``raise rule_error("n_heads", "d_model (66) must be
    a multiple of n_heads (4)")`` -> ``params.n_heads: d_model (66) must be ...``."""
    return PydanticCustomError(RULE, "{message}", {"field": field, "message": message})


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
        ``args`` are the seed and the split sizes). Raises :class:`ParamsError` for a parameter
        its model refuses (unknown, mistyped, out of range, breaking a rule between fields);
        the plugin's own checks raise as they always did."""
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
    """One line per bad parameter: unknown names, missing required ones, values of the wrong
    type (``expected an integer, got 'x'``, from the field's type), values out of range
    (``must be an integer in [1, 12], got 0``, from the field's bounds) and broken rules
    between fields (on the field :func:`rule_error` names). Nested models are followed
    (``reference_task.n``)."""
    out: list[str] = []
    done: set[str] = set()
    for e in exc.errors():
        kind = e["type"]
        loc: tuple[int | str, ...] = (
            tuple(str(e.get("ctx", {}).get("field", "")).split(".")) if kind == RULE
            else tuple(p for p in e["loc"] if isinstance(p, int) or not _is_type_tag(p)))
        holder, holder_name, info, depth = _resolve(model, plugin, loc)
        typed = info is not None and _is_type_error(kind)
        key = ".".join(str(p) for p in (loc[:depth] if typed else loc))
        if key in done:  # a union's members fail one by one: one line for the value
            continue
        done.add(key)
        path = _join(where, key)
        if kind == "extra_forbidden":
            takes = ", ".join(sorted(holder.model_fields)) or "none"
            out.append(f"{path}: unknown parameter ({holder_name} takes: {takes})")
        elif kind == "missing" and info is not None:
            out.append(f"{path}: missing required parameter ({_describe(info)})")
        elif info is not None and typed:
            out.append(f"{path}: expected {expected(info.annotation)}, "
                       f"got {_value_at(given, loc[:depth])!r}")
        elif info is not None and kind in _RANGE_ERRORS and depth == len(loc):
            lo, hi, lo_open, hi_open = bounds(info)
            out.append(f"{path}: must be {_number_kind(info.annotation)}"
                       f"{range_text(lo, hi, lo_open, hi_open)}, got {e['input']!r}")
        else:
            out.append(f"{path}: {e['msg'].removeprefix('Value error, ')}")
    return out


_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (itself or as a union member, e.g. ``Model | None``)."""
    for a in _members(annotation) or (annotation,):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def _resolve(model: type[BaseModel], plugin: str, loc: tuple[int | str, ...]
             ) -> tuple[type[BaseModel], str, FieldInfo | None, int]:
    """Follow ``loc`` through ``model`` and the models its fields hold: the model the path
    ends in and its name (``plugin`` at the top), the deepest field's info and its depth."""
    holder, name, info, depth = model, plugin, None, 0
    current: type[BaseModel] | None = model
    for i, part in enumerate(loc):
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            break
        holder, name = current, plugin if i == 0 else ".".join(str(p) for p in loc[:i])
        info, depth = current.model_fields[part], i + 1
        current = _model_in(info.annotation)
        if current is not None:
            holder, name = current, ".".join(str(p) for p in loc[: i + 1])
    return holder, name, info, depth


def _value_at(given: Mapping[str, Any], path: tuple[int | str, ...]) -> Any:
    value: Any = given
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _number_kind(annotation: Any) -> str:
    members = _members(annotation) or (annotation,)
    return "an integer" if int in members and float not in members else "a number"


def bounds(info: FieldInfo) -> tuple[Any, Any, bool, bool]:
    """A field's range from its ``Field(ge=, gt=, le=, lt=)``: ``(lo, hi, lo_open, hi_open)``
    (``None``: no bound on that side; the numbers as declared)."""
    lo: Any = None
    hi: Any = None
    lo_open = hi_open = False
    for m in info.metadata:  # annotated_types' Ge, Gt, Le, Lt
        if getattr(m, "ge", None) is not None:
            lo, lo_open = m.ge, False
        elif getattr(m, "gt", None) is not None:
            lo, lo_open = m.gt, True
        elif getattr(m, "le", None) is not None:
            hi, hi_open = m.le, False
        elif getattr(m, "lt", None) is not None:
            hi, hi_open = m.lt, True
    return lo, hi, lo_open, hi_open


def range_text(lo: float | None, hi: float | None, lo_open: bool = False,
               hi_open: bool = False) -> str:
    """A range as a message says it: `` in [1, 12]``, `` in (0, 1]``, `` >= 3``, `` < 2``, or
    ``""`` without bounds."""
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f" {'>' if lo_open else '>='} {_fmt(lo)}"
    if lo is None:
        return f" {'<' if hi_open else '<='} {_fmt(hi)}"
    return f" in {'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"


def _fmt(x: float | None) -> str:
    """``12``, ``0.5``, and large round bounds as written: ``2^62``, ``2^31-1``, ``10^9``."""
    assert x is not None
    if isinstance(x, float) and x.is_integer() and abs(x) < 2**63:
        x = int(x)
    if isinstance(x, int) and x >= 10**6:
        if x & (x - 1) == 0:
            return f"2^{x.bit_length() - 1}"
        if x & (x + 1) == 0:
            return f"2^{x.bit_length()}-1"
        if str(x).rstrip("0") == "1":
            return f"10^{len(str(x)) - 1}"
    return str(x)


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
    if origin is dict or _model_in(annotation) is annotation:
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
    if origin is dict or _model_in(annotation) is annotation:
        return "a mapping"
    return _EXPECTED.get(annotation, type_name(annotation))
