"""How fast a campaign leaks in simulated time: students trained on prefixes of its harvest.

A cell trains one student on its whole harvest. :func:`prefix_curve` trains the same recipe on
the harvest as it stood after 1/8, 1/4 and 1/2 of its answered queries (in the order the
oracle sent them, every note kept, as for ``transfer_at_flag``) and pairs each transfer with
the simulated time the last of those queries was sent. The first point at 50% transfer or
more bounds the simulated time to 50% from above (``half_sim_s``): the campaign had leaked
half by then, and the curve does not say how much earlier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from extractbench.attacks.base import train_pairs
from extractbench.config.scenario import StudentSpec
from extractbench.logs.harvest import Entry, ResponseEntry
from extractbench.measure.detection import before_flag
from extractbench.measure.fit import fit_and_score
from extractbench.stats import bootstrap_transfer
from extractbench.tasks import Task

__all__ = ["FRACTIONS", "HALF", "prefix_fields"]

FRACTIONS = (1 / 8, 1 / 4, 1 / 2)
"""The shares of the answered queries a prefix student is trained on (the whole is the
cell's own student)."""
HALF = 0.5


def prefix_fields(entries: Sequence[Entry], spec: StudentSpec, seed: int, task: Task,
                  teacher: list[float], base: list[float], transfer: float) -> dict[str, Any]:
    """The record's ``prefix_curve``, ``half_sim_s`` and ``half_queries`` (``transfer``: the
    cell's own, on the whole harvest). Empty when the harvest has no simulated times."""
    got = sorted((e for e in entries if isinstance(e, ResponseEntry)), key=lambda e: e.index)
    if not got or any(e.sim_s is None for e in got):
        return {}
    curve: list[dict[str, float | int]] = []
    for m in sorted({max(1, int(len(got) * f)) for f in FRACTIONS}):
        if m >= len(got):
            continue
        last = got[m - 1]
        fit = fit_and_score(spec, train_pairs(before_flag(entries, last.index + 1)), seed, task)
        curve.append({"queries": m, "sim_s": float(last.sim_s or 0.0),
                      "transfer": bootstrap_transfer(teacher, base, fit.scores,
                                                     seed=seed).value})
    curve.append({"queries": len(got), "sim_s": float(got[-1].sim_s or 0.0),
                  "transfer": transfer})
    half = next((p for p in curve if p["transfer"] >= HALF), None)
    return {"prefix_curve": curve,
            "half_sim_s": float(half["sim_s"]) if half is not None else None,
            "half_queries": int(half["queries"]) if half is not None else None}
