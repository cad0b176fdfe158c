"""Published directions a scenario tests (``directions:``): pure functions over a run's records.

A direction says one contrast of a metric exceeds (or stays under) a bound, or exceeds a second
contrast by it: e.g. "stripping reasoning costs arithmetic students more than classification
students" is ``(reference - reasoning-guard on arithmetic) - (the same on classification) >=
0.2``. A contrast is the mean over the cells at ``of`` minus the mean over those at ``minus``;
the value is computed on all seeds' cells, and again per seed (where every side has that
seed) for the spread. A direction whose sides select no cell would pass every run without
checking anything, so :func:`direction_problems` refuses one at validate time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from extractbench.config.gates import at, cell_coordinates, metric_value, record_coordinates
from extractbench.config.scenario import Contrast, Direction

if TYPE_CHECKING:
    from extractbench.config.plan import Cell
    from extractbench.logs.records import CellRecord

__all__ = ["Verdict", "direction_problems", "judge", "judge_all"]


def direction_problems(directions: Sequence[Direction], cells: Sequence[Cell]) -> list[str]:
    """``directions.N.effect.of: ...`` lines for each side that selects no cell of ``cells``."""
    coords = [cell_coordinates(c) for c in cells]
    out = []
    for n, d in enumerate(directions):
        for place, where in d.wheres():
            if not any(at(where, c) for c in coords):
                together = ", ".join(f"{k}={v}" for k, v in where.items())
                out.append(f"directions.{n}.{place}: no cell has {together} (check grids:)")
    return out


def _mean(metric: str, where: Mapping[Any, object], records: Sequence[CellRecord],
          seed: int | None) -> float | None:
    values = [v for r in records
              if at(where, record_coordinates(r)) and (seed is None or r.seed == seed)
              and (v := metric_value(metric, r)) is not None]
    return sum(values) / len(values) if values else None


def _contrast(metric: str, c: Contrast, records: Sequence[CellRecord],
              seed: int | None) -> float | None:
    of = _mean(metric, c.of, records, seed)
    if c.minus is None or of is None:
        return of
    minus = _mean(metric, c.minus, records, seed)
    return None if minus is None else of - minus


def _measure(d: Direction, records: Sequence[CellRecord], seed: int | None) -> float | None:
    effect = _contrast(d.metric, d.effect, records, seed)
    if d.than is None or effect is None:
        return effect
    than = _contrast(d.metric, d.than, records, seed)
    return None if than is None else effect - than


@dataclass(frozen=True)
class Verdict:
    """What the run says of one direction."""

    claim: str
    source: str
    metric: str
    value: float | None
    """The direction's value on the seed means (``None``: a side had no ok cell)."""
    per_seed: dict[int, float]
    """The same per seed, where every side has that seed."""
    effect: float | None
    than: float | None
    min: float | None
    max: float | None

    @property
    def holds(self) -> bool | None:
        """Whether the value is within the bounds (``None``: not measured)."""
        if self.value is None:
            return None
        return ((self.min is None or self.value >= self.min)
                and (self.max is None or self.value <= self.max))

    def text(self) -> str:
        """``holds: 0.43 (seeds 0.38 to 0.47) >= 0.20: <claim>``."""
        bound = " and ".join(b for b in (
            f">= {self.min:.2f}" if self.min is not None else "",
            f"<= {self.max:.2f}" if self.max is not None else "") if b)
        if self.value is None:
            return f"not measured (a side has no ok cell): {self.claim}"
        spread = ""
        if len(self.per_seed) > 1:
            spread = (f" (seeds {min(self.per_seed.values()):.2f} to "
                      f"{max(self.per_seed.values()):.2f})")
        word = "holds" if self.holds else "does not hold"
        return f"{word}: {self.value:.2f}{spread}, needs {bound}: {self.claim}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "holds": self.holds}


def judge(d: Direction, records: Sequence[CellRecord]) -> Verdict:
    """The verdict on ``d`` from a run's ``records``."""
    seeds = sorted({r.seed for r in records})
    per_seed = {s: v for s in seeds if (v := _measure(d, records, s)) is not None}
    return Verdict(d.claim, d.source, d.metric, _measure(d, records, None), per_seed,
                   _contrast(d.metric, d.effect, records, None),
                   _contrast(d.metric, d.than, records, None) if d.than is not None else None,
                   d.min, d.max)


def judge_all(directions: Sequence[Direction], records: Sequence[CellRecord]) -> list[Verdict]:
    return [judge(d, records) for d in directions]
