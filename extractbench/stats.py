"""Bootstrap confidence intervals for transfer and plain means.

``transfer = (mean(student) - mean(base)) / (mean(teacher) - mean(base))`` over held-out
items, reported unclipped (a student below the base gives a negative transfer, one above the
teacher gives more than 1). Intervals are percentile bootstraps that resample held-out items
*jointly*: one draw of item indices is applied to the teacher, base and student vectors, so the
correlation between them (same items, same difficulty) is kept.

When the teacher is no better than the base on average (``mean(teacher) == mean(base)``),
transfer is undefined: the functions return an :class:`Interval` whose value, low and high are
all ``nan``. Bootstrap replicates whose own denominator is 0 are dropped before taking
percentiles; if every replicate is dropped the bounds are ``nan``.

Everything is deterministic given ``seed`` (a :func:`numpy.random.default_rng` generator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from extractbench.logs.records import Interval

__all__ = [
    "bootstrap_mean",
    "bootstrap_transfer",
    "bootstrap_transfer_seeds",
    "normal_replicates",
    "percentile_bounds",
    "transfer_of",
    "transfer_replicates",
    "wilson_interval",
]

FloatArray = npt.NDArray[np.float64]


def transfer_of(teacher_mean: float, base_mean: float, student_mean: float) -> float:
    """Unclipped transfer from three mean scores; ``nan`` when teacher equals base."""
    denominator = teacher_mean - base_mean
    if denominator == 0 or math.isnan(denominator):
        return math.nan
    return (student_mean - base_mean) / denominator


def _nan_interval(level: float) -> Interval:
    return Interval(value=math.nan, low=math.nan, high=math.nan, level=level)


def _vector(values: Sequence[float] | npt.ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d sequence of per-item scores, got {array.ndim}-d")
    return array


def _percentiles(replicates: FloatArray, level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return math.nan, math.nan
    alpha = (1 - level) / 2
    low, high = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def percentile_bounds(
    replicates: npt.ArrayLike, level: float = 0.95, keep_inf: bool = False
) -> tuple[float, float]:
    """Percentile-bootstrap bounds of ``replicates``; ``nan`` replicates are dropped.

    With ``keep_inf``, infinite replicates are kept (e.g. "never reached" as ``+inf``) and the
    bounds are order statistics (no interpolation), so a bound may be ``inf``.
    """
    array = np.asarray(replicates, dtype=np.float64)
    if not keep_inf:
        return _percentiles(array, level)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    kept = array[~np.isnan(array)]
    if kept.size == 0:
        return math.nan, math.nan
    alpha = 100 * (1 - level) / 2
    low = float(np.percentile(kept, alpha, method="lower"))
    high = float(np.percentile(kept, 100 - alpha, method="higher"))
    return low, high


def normal_replicates(
    value: float, low: float, high: float, n_boot: int, rng: np.random.Generator,
    level: float = 0.95,
) -> FloatArray:
    """Stand-in replicates for a figure known only as an interval: normal draws with the
    interval's half-width as ``z * sd``. A missing bound gives constant draws; a missing
    value gives ``nan``."""
    if math.isnan(value):
        return np.full(n_boot, np.nan)
    if math.isnan(low) or math.isnan(high) or high <= low:
        return np.full(n_boot, value, dtype=np.float64)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return np.asarray(rng.normal(value, (high - low) / (2 * z), n_boot), dtype=np.float64)


def transfer_replicates(
    teacher: npt.ArrayLike, base: npt.ArrayLike, student: npt.ArrayLike,
    index: npt.NDArray[np.intp],
) -> FloatArray:
    """Transfer for each row of ``index`` (one bootstrap draw of held-out item indices per
    row, applied jointly to the three per-item score vectors); ``nan`` where the draw's
    teacher mean equals its base mean."""
    return _replicate_transfers(_vector(teacher, "teacher"), _vector(base, "base"),
                                _vector(student, "student"), index)


def _replicate_transfers(
    teacher: FloatArray, base: FloatArray, student: FloatArray, index: npt.NDArray[np.intp]
) -> FloatArray:
    """Transfer for each row of ``index`` (one bootstrap draw of item indices per row)."""
    t, b, s = teacher[index].mean(axis=1), base[index].mean(axis=1), student[index].mean(axis=1)
    denominator = t - b
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (s - b) / denominator
    out[denominator == 0] = np.nan
    return np.asarray(out, dtype=np.float64)


def bootstrap_transfer(
    teacher: Sequence[float] | npt.ArrayLike,
    base: Sequence[float] | npt.ArrayLike,
    student: Sequence[float] | npt.ArrayLike,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Unclipped transfer with a percentile-bootstrap CI over held-out items.

    The three vectors are per-item scores on the same held-out items, in the same order.
    Returns a ``nan`` interval when ``mean(teacher) == mean(base)`` (transfer undefined).
    """
    return bootstrap_transfer_seeds([(teacher, base, student)], n_boot, seed, level)


def bootstrap_transfer_seeds(
    cells: Sequence[
        tuple[
            Sequence[float] | npt.ArrayLike,
            Sequence[float] | npt.ArrayLike,
            Sequence[float] | npt.ArrayLike,
        ]
    ],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Seed-mean transfer with a CI over held-out items and seeds.

    ``cells`` holds one ``(teacher, base, student)`` triple of per-item scores per seed. The
    value is the mean over seeds of each seed's transfer (seeds with undefined transfer are
    left out; all undefined gives a ``nan`` interval). Each bootstrap replicate resamples items
    (one index draw shared by all seeds when they have the same number of items, since they
    are then taken to be the same held-out set) and, when there are several seeds, resamples
    seeds with replacement too.
    """
    if not cells:
        raise ValueError("no cells to bootstrap")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    triples: list[tuple[FloatArray, FloatArray, FloatArray]] = []
    for i, (teacher, base, student) in enumerate(cells):
        t, b, s = (_vector(v, f"cell {i} {n}") for v, n in
                   ((teacher, "teacher"), (base, "base"), (student, "student")))
        if not (t.size == b.size == s.size) or t.size == 0:
            raise ValueError(
                f"cell {i}: teacher, base and student need the same non-zero number of items "
                f"(got {t.size}, {b.size}, {s.size})"
            )
        triples.append((t, b, s))

    points = np.array([transfer_of(t.mean(), b.mean(), s.mean()) for t, b, s in triples])
    if np.all(np.isnan(points)):
        return _nan_interval(level)
    value = float(np.nanmean(points))

    rng = np.random.default_rng(seed)
    sizes = {t.size for t, _, _ in triples}
    shared = rng.integers(0, triples[0][0].size, size=(n_boot, triples[0][0].size)) \
        if len(sizes) == 1 else None
    per_seed = np.empty((len(triples), n_boot), dtype=np.float64)
    for k, (t, b, s) in enumerate(triples):
        index = shared if shared is not None else rng.integers(0, t.size, size=(n_boot, t.size))
        per_seed[k] = _replicate_transfers(t, b, s, index)

    if len(triples) == 1:
        replicates = per_seed[0]
    else:
        chosen = rng.integers(0, len(triples), size=(n_boot, len(triples)))
        draws = per_seed[chosen, np.arange(n_boot)[:, None]]  # (n_boot, n_seeds)
        defined = ~np.isnan(draws)
        counts = defined.sum(axis=1)
        sums = np.where(defined, draws, 0.0).sum(axis=1)
        replicates = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    low, high = _percentiles(replicates, level)
    return Interval(value=value, low=low, high=high, level=level)


def bootstrap_mean(
    values: Sequence[float] | npt.ArrayLike,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Mean with a percentile-bootstrap CI; ``nan`` interval for an empty input."""
    array = _vector(values, "values")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if array.size == 0:
        return _nan_interval(level)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, array.size, size=(n_boot, array.size))
    low, high = _percentiles(array[index].mean(axis=1), level)
    return Interval(value=float(array.mean()), low=low, high=high, level=level)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> Interval:
    """A proportion with its Wilson score interval (``nan`` for ``n == 0``).

    Used for rates such as a false-positive rate, where a percentile bootstrap of 0 events
    out of ``n`` degenerates to ``[0, 0]``; Wilson's upper bound stays honest (about
    ``3.8 / n`` at 95% when nothing was observed).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return _nan_interval(level)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(value=p, low=max(0.0, centre - half), high=min(1.0, centre + half),
                    level=level)
