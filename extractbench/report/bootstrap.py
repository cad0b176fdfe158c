"""Bootstrap CIs of a profile's whole worst-case curve: ``auc`` and ``q50_*``.

Each replicate resamples held-out items (one draw per held-out set, shared by every cell scored
on it, so budgets stay correlated as they are in the data) and seeds, recomputes the transfer
of the cells that achieved the worst case, and recomputes the area and the crossing. A
replicate that never reaches 50% counts as ``inf``, so a bound can be "not reached". Cells
without per-item scores enter as normal draws matching their recorded interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from extractbench.report import columns as c
from extractbench.report.curve import TARGET, FloatArray, auc_rows, crossing_rows
from extractbench.stats import normal_replicates, percentile_bounds, transfer_replicates

__all__ = ["curve_intervals", "nanmean", "records"]

Bounds = tuple[float, float]


def nanmean(values: FloatArray, axis: int) -> FloatArray:
    """Mean ignoring ``nan``; ``nan`` where a slice has no number (and no warning)."""
    defined = ~np.isnan(values)
    counts = defined.sum(axis=axis)
    sums = np.where(defined, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts with string keys."""
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def to_float(value: object) -> float:
    """``float(value)``, or ``nan`` when it is not a number."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number


def _curve_replicates(rows: pd.DataFrame, winners: pd.DataFrame, labels: Sequence[str],
                      n_boot: int, seed: int) -> FloatArray:
    """``(n_boot, len(labels))`` bootstrap replicates of one profile's worst-case curve.

    ``rows`` are the profile's ok cells (a cells frame, one row per seed) or its seed means;
    ``winners`` the per-task worst case (:func:`worst_case` with ``by_task=True``): each
    replicate follows the (attack, student) that achieved the worst case at each budget, as
    the per-budget CIs do, rather than re-taking a max over noisy attacks (which would bias
    the interval upward). Tasks are averaged per budget.
    """
    rng = np.random.default_rng(seed)
    per_seed = c.N_SEEDS not in rows and c.SEED in rows
    chosen = {(str(w[c.TASK]), str(w[c.ATTACK]), str(w[c.STUDENT]), str(w[c.BUDGET_LABEL]))
              for w in records(winners)}
    cells = sorted(
        (r for r in records(rows) if (str(r[c.TASK]), str(r[c.ATTACK]), str(r[c.STUDENT]),
                                       str(r[c.BUDGET_LABEL])) in chosen),
        key=lambda r: (str(r[c.TASK]), str(r[c.ATTACK]), str(r[c.STUDENT]),
                       str(r[c.BUDGET_LABEL]), int(r[c.SEED]) if per_seed else 0))
    seeds = sorted({int(r[c.SEED]) for r in cells}) if per_seed else [0]
    item_sets = sorted({(str(r[c.TASK]), int(r[c.SEED]) if per_seed else 0,
                         len(r[c.ITEMS].teacher)) for r in cells
                        if per_seed and r.get(c.ITEMS) is not None})
    draws = {key: rng.integers(0, key[2], size=(n_boot, key[2])) for key in item_sets}
    pick = rng.integers(0, len(seeds), size=(n_boot, len(seeds))) if len(seeds) > 1 else None

    groups: dict[tuple[str, str, str, str], FloatArray] = {}
    for r in cells:
        label = str(r[c.BUDGET_LABEL])
        if label not in labels:
            continue
        s = int(r[c.SEED]) if per_seed else 0
        items = r.get(c.ITEMS) if per_seed else None
        if items is not None:
            rep = transfer_replicates(items.teacher, items.base, items.student,
                                      draws[(str(r[c.TASK]), s, len(items.teacher))])
        else:
            rep = normal_replicates(to_float(r.get(c.TRANSFER)), to_float(r.get(c.TRANSFER_LOW)),
                                    to_float(r.get(c.TRANSFER_HIGH)), n_boot, rng)
        key = (str(r[c.TASK]), str(r[c.ATTACK]), str(r[c.STUDENT]), label)
        matrix = groups.setdefault(key, np.full((len(seeds), n_boot), np.nan))
        matrix[seeds.index(s)] = rep

    worst: dict[tuple[str, str], FloatArray] = {}
    for (task, _attack, _student, label), matrix in groups.items():
        if pick is None:
            worst[(task, label)] = matrix[0]
        else:  # resample seeds: the same draw for every cell of the profile
            worst[(task, label)] = nanmean(matrix[pick, np.arange(n_boot)[:, None]], axis=1)
    tasks = sorted({task for task, _ in worst})
    curve = np.full((n_boot, len(labels)), np.nan)
    for j, label in enumerate(labels):
        per_task = [worst[(t, label)] for t in tasks if (t, label) in worst]
        if per_task:
            curve[:, j] = nanmean(np.vstack(per_task), axis=0)
    return curve


def curve_intervals(rows: pd.DataFrame, winners: pd.DataFrame, group: pd.DataFrame,
                    n_boot: int, seed: int) -> tuple[Bounds, Bounds, Bounds]:
    """``(low, high)`` of ``auc``, ``q50_queries`` and ``q50_usd`` for one profile: ``rows``
    its cells, ``winners`` its per-task worst case, ``group`` its worst-case curve."""
    curve = group.dropna(subset=[c.TRANSFER])
    curve = curve[pd.to_numeric(curve[c.X_QUERIES], errors="coerce") > 0]
    curve = curve.sort_values(c.X_QUERIES, kind="stable")
    if curve.empty or n_boot < 1:
        return (math.nan, math.nan), (math.nan, math.nan), (math.nan, math.nan)
    labels = [str(label) for label in curve[c.BUDGET_LABEL]]
    ys = _curve_replicates(rows, winners, labels, n_boot, seed)
    xq = curve[c.X_QUERIES].to_numpy(dtype=float)
    xu = pd.to_numeric(curve[c.X_USD], errors="coerce").to_numpy(dtype=float)
    q50, usd50 = crossing_rows([xq, xu], ys, TARGET)
    return (percentile_bounds(auc_rows(xq, ys)), percentile_bounds(q50, keep_inf=True),
            percentile_bounds(usd50, keep_inf=True))
