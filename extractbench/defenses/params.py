"""Range checks shared by the defenses' constructors: each failure is one ``ValueError`` line
naming the defense, the parameter and the allowed values.

Names, types and ranges are declared once per defense, as its parameter model (a
:class:`~extractbench.registry.PluginParams` next to the class, given to
``DEFENSES.register``), like every other plugin kind's; those are checked by the registry
before a defense is built from a scenario. These helpers keep a directly constructed defense
as strict as before (a model's range may be narrower than its constructor's)."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import TypeVar

from extractbench.registry import range_text

T = TypeVar("T")


def number(defense: str, param: str, value: object, lo: float | None = None,
           hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False,
           integer: bool = False) -> float:
    """``value`` as a number within [lo, hi] (``lo_open``/``hi_open`` exclude the end)."""
    kind = "an integer" if integer else "a number"
    wrong = (f"{defense}: {param} must be {kind}{range_text(lo, hi, lo_open, hi_open)}, "
             f"got {value!r}")
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise ValueError(wrong)
    v = float(value)  # type: ignore[arg-type]
    if (lo is not None and (v < lo or (lo_open and v == lo))) or (
        hi is not None and (v > hi or (hi_open and v == hi))
    ):
        raise ValueError(wrong)
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
