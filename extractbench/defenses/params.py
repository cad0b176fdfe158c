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
from typing import Any, TypeVar

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


def reference_task(defense: str, spec: object, max_n: int) -> Any:
    """The task a defense's ``reference_task`` (``{family, params, n, seed}``: the defender's
    own sample of legitimate prompts) names, built with ``n`` benign items (default 200, at
    most ``max_n``); one-line errors naming ``defense``."""
    from extractbench.registry import UnknownNameError
    from extractbench.tasks import TASKS

    if hasattr(spec, "model_dump"):
        spec = spec.model_dump()
    if not isinstance(spec, dict) or "family" not in spec:
        raise ValueError(f"{defense}: reference_task must be a mapping with family "
                         "(and optional params, n, seed)")
    unknown = set(spec) - {"family", "params", "n", "seed"}
    if unknown:
        raise ValueError(f"{defense}: reference_task: unknown field(s) {sorted(unknown)} "
                         "(allowed: family, params, n, seed)")
    n = integer(defense, "reference_task.n", spec.get("n", 200), 1, max_n)
    seed = integer(defense, "reference_task.seed", spec.get("seed", 0), 0, 2**31 - 1)
    try:
        factory = TASKS.get(str(spec["family"]))
        return factory(seed, {"benign": n}, **dict(spec.get("params") or {}))
    except UnknownNameError as exc:
        raise ValueError(f"{defense}: reference_task.family: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{defense}: reference_task.params: {exc}") from None
