"""One registry pattern for every pluggable kind: attacks, defenses, students, tasks.

A kind is registered by name with a decorator; other packages add their own through the
entry-point group ``extractbench.<kind>`` (a module to import, which registers on import).
Entry points are loaded lazily, the first time a registry is looked up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A scenario or command named something no registry holds."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.kind, self.name, self.known = kind, name, known

    def __str__(self) -> str:
        return f"unknown {self.kind} {self.name!r} (known: {', '.join(self.known) or 'none'})"


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    description: str


class Registry(Generic[T]):
    """Name -> factory, filled by :meth:`register` and by entry points."""

    def __init__(self, kind: str, builtin_modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._builtin = builtin_modules
        self._loaded = False

    def register(self, name: str, description: str = "") -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name`` (its docstring's first line describes it)."""

        def deco(obj: T) -> T:
            doc = description or (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]
            self._entries[name] = Entry(name, obj, doc)
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

    def get(self, name: str) -> T:
        self._load()
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, self.names())
        return self._entries[name].obj

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        self._load()
        return [self._entries[n] for n in sorted(self._entries)]
