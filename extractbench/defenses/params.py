"""Range checks shared by the defenses' constructors: each failure is one ``ValueError`` line
naming the defense, the parameter and the allowed values.

Names and types are declared once per defense, as its parameter model (a
:class:`~extractbench.registry.PluginParams` next to the class, given to
``DEFENSES.register``), like every other plugin kind's; those are checked by the registry
before a defense is built from a scenario. These helpers check what a type cannot say
(``0 < threshold < 1``) and keep a directly constructed defense as strict as before."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import TypeVar

T = TypeVar("T")


def number(defense: str, param: str, value: object, lo: float | None = None,
           hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False,
           integer: bool = False) -> float:
    """``value`` as a number within [lo, hi] (``lo_open``/``hi_open`` exclude the end)."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise ValueError(f"{defense}: {param} must be {kind}{_range(lo, hi, lo_open, hi_open)}, "
                         f"got {value!r}")
    v = float(value)  # type: ignore[arg-type]
    if (lo is not None and (v < lo or (lo_open and v == lo))) or (
        hi is not None and (v > hi or (hi_open and v == hi))
    ):
        raise ValueError(f"{defense}: {param} must be {kind}{_range(lo, hi, lo_open, hi_open)}, "
                         f"got {value!r}")
    return v


def integer(defense: str, param: str, value: object, lo: int | None = None,
            hi: int | None = None) -> int:
    return int(number(defense, param, value, lo, hi, integer=True))


def optional(defense: str, param: str, value: object, lo: float | None = None,
             hi: float | None = None, *, lo_open: bool = False, integer: bool = False
             ) -> float | None:
    if value is None:
        return None
    return number(defense, param, value, lo, hi, lo_open=lo_open, integer=integer)


def choice(defense: str, param: str, value: T, allowed: Collection[T]) -> T:
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{defense}: {param} must be one of {options}, got {value!r}")
    return value


def _range(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is None and hi is None:
        return ""
    if hi is None:
        return f" {'>' if lo_open else '>='} {_fmt(lo)}"
    if lo is None:
        return f" {'<' if hi_open else '<='} {_fmt(hi)}"
    return f" in {'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"


def _fmt(x: float | None) -> str:
    assert x is not None
    return str(int(x)) if float(x).is_integer() else str(x)
