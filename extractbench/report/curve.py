"""Curve arithmetic the leaderboard is made of: area under a transfer curve over log-spend,
where a curve first reaches a transfer level, tie-aware rank labels and the Pareto front.

Pure functions of arrays; :mod:`extractbench.report.analysis` applies them to the worst-case
curves, and their vectorised forms (``auc_rows``, ``crossing_rows``) to bootstrap replicates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["TARGET", "auc_rows", "crossing", "crossing_rows", "log_auc", "pareto_front",
           "rank_labels"]

TARGET = 0.5
"""The transfer level whose cost the leaderboard reports (``q50_*``)."""

FloatArray = npt.NDArray[np.float64]

def _clean_curve(xs: npt.ArrayLike, ys: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    order = np.argsort(x[keep], kind="stable")
    return x[keep][order], y[keep][order]


def log_auc(xs: npt.ArrayLike, ys: npt.ArrayLike) -> float:
    """Trapezoid area under ``ys`` vs ``log10(xs)`` divided by the log-range (transfer units).

    Points with a non-positive or missing x or y are left out; one point gives its y; none
    gives ``nan``.
    """
    x, y = _clean_curve(xs, ys)
    if x.size == 0:
        return math.nan
    return float(auc_rows(x, y[None, :])[0])


def auc_rows(x: FloatArray, ys: FloatArray) -> FloatArray:
    """:func:`log_auc` of each row of ``ys`` over the sorted, positive ``x``."""
    logx = np.log10(x)
    span = logx[-1] - logx[0]
    if x.size == 1 or span == 0:
        return np.asarray(ys.mean(axis=1), dtype=float)
    area = ((logx[1:] - logx[:-1]) * (ys[:, 1:] + ys[:, :-1]) / 2).sum(axis=1)
    return np.asarray(area / span, dtype=float)


def crossing(
    xs: npt.ArrayLike, ys: npt.ArrayLike, target: float = TARGET,
    others: Sequence[npt.ArrayLike] = (),
) -> tuple[str, list[float]]:
    """Where the curve ``ys`` vs ``xs`` first reaches ``target``, in x units.

    Interpolates linearly in ``log10(x)`` between the last budget below the target and the
    first at or above it. Returns ``(status, [x, *others_at_crossing])`` with ``status`` one
    of ``interpolated``, ``at_first_budget`` (the smallest budget already reaches it; values
    are that budget's) or ``not_reached`` (values ``nan``). Each sequence in ``others`` (e.g.
    dollars spent at each budget) is interpolated at the same fraction, in log space when its
    two values are positive, linearly otherwise.
    """
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    extra = [np.asarray(o, dtype=float) for o in others]
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    order = np.argsort(x[keep], kind="stable")
    x, y = x[keep][order], y[keep][order]
    extra = [e[keep][order] for e in extra]
    hits = np.flatnonzero(y >= target)
    if hits.size == 0:
        return "not_reached", [math.nan] * (1 + len(extra))
    i = int(hits[0])
    if i == 0:
        return "at_first_budget", [float(x[0]), *(float(e[0]) for e in extra)]
    values = crossing_rows([x, *extra], y[None, :], target)
    return "interpolated", [float(v[0]) for v in values]


def crossing_rows(series: Sequence[FloatArray], ys: FloatArray,
                   target: float) -> list[FloatArray]:
    """Vectorised :func:`crossing` over the rows of ``ys``: for each series (x first), its
    value where the row first reaches ``target``; ``inf`` for rows that never do."""
    n = ys.shape[0]
    hits = np.nan_to_num(ys, nan=-np.inf) >= target
    reached = hits.any(axis=1)
    i = np.where(reached, hits.argmax(axis=1), 0)
    prev = np.maximum(i - 1, 0)
    rows = np.arange(n)
    y0, y1 = ys[rows, prev], ys[rows, i]
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(i > 0, (target - y0) / (y1 - y0), 0.0)
    out = []
    for values in series:
        a, b = values[prev], values[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            logged = 10 ** (np.log10(a) + fraction * (np.log10(b) - np.log10(a)))
        linear = a + fraction * (b - a)
        result = np.where((a > 0) & (b > 0), logged, linear)
        out.append(np.where(reached, result, np.inf))
    return out


def rank_labels(lows: Sequence[float], highs: Sequence[float],
                values: Sequence[float] | None = None) -> list[str]:
    """Rank labels for rows already sorted best first, given each row's CI bounds.

    A row whose interval overlaps that of the first row of the tie group above it (for the
    second row of a group: its neighbour) shares that rank, and every member of a tie is
    labelled ``=k``; otherwise a row's rank is its 1-based position. Comparing with the
    group's first row rather than always the previous row stops a chain of small overlaps
    from tying profiles whose intervals are far apart. With ``values``, a row without an
    interval is the point ``[value, value]``, so equal values without CIs tie too.
    """
    def bounds(i: int) -> tuple[float, float]:
        low, high = lows[i], highs[i]
        if values is not None and (math.isnan(low) or math.isnan(high)):
            return values[i], values[i]
        return low, high

    ranks: list[int] = []
    for i in range(len(lows)):
        leader = ranks[-1] - 1 if ranks else 0
        overlaps = i > 0 and _overlap(*bounds(i), *bounds(leader))
        ranks.append(ranks[-1] if overlaps else i + 1)
    return [f"={r}" if ranks.count(r) > 1 else str(r) for r in ranks]


def _overlap(low_a: float, high_a: float, low_b: float, high_b: float) -> bool:
    if any(math.isnan(v) for v in (low_a, high_a, low_b, high_b)):
        return False
    return low_a <= high_b and low_b <= high_a


def pareto_front(utility: npt.ArrayLike, resistance: npt.ArrayLike) -> list[bool]:
    """Which points no other point dominates (at least as high on both axes and higher on
    one); points with a missing coordinate are never on the front."""
    u = np.asarray(utility, dtype=float)
    r = np.asarray(resistance, dtype=float)
    ok = np.isfinite(u) & np.isfinite(r)
    out = []
    for i in range(len(u)):
        if not ok[i]:
            out.append(False)
            continue
        dominated = ok & (u >= u[i]) & (r >= r[i]) & ((u > u[i]) | (r > r[i]))
        out.append(not bool(dominated.any()))
    return out
