"""Bootstrap transfer and mean: definitions, determinism, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from extractbench.stats import (
    bootstrap_mean,
    bootstrap_transfer,
    bootstrap_transfer_seeds,
    normal_replicates,
    percentile_bounds,
    transfer_of,
    transfer_replicates,
    wilson_interval,
)


def _scores(seed: int, n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    teacher = (rng.random(n) < 0.9).astype(float)
    base = (rng.random(n) < 0.3).astype(float)
    student = np.where(rng.random(n) < 0.5, teacher, base)
    return teacher, base, student


def test_point_is_the_definition() -> None:
    teacher, base, student = _scores(1)
    interval = bootstrap_transfer(teacher, base, student, n_boot=200)
    expected = (student.mean() - base.mean()) / (teacher.mean() - base.mean())
    assert interval.value == pytest.approx(expected)
    assert interval.level == 0.95


def test_deterministic_with_seed_and_contains_point() -> None:
    teacher, base, student = _scores(2)
    a = bootstrap_transfer(teacher, base, student, n_boot=500, seed=7)
    b = bootstrap_transfer(teacher, base, student, n_boot=500, seed=7)
    c = bootstrap_transfer(teacher, base, student, n_boot=500, seed=8)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.low < a.value < a.high


def test_joint_resampling_keeps_exact_copies_exact() -> None:
    """Resampling the same items for all vectors: a student equal to the teacher transfers
    exactly 1 in every replicate, one equal to the base exactly 0."""
    teacher, base, _ = _scores(3)
    full = bootstrap_transfer(teacher, base, teacher, n_boot=300)
    none = bootstrap_transfer(teacher, base, base, n_boot=300)
    assert (full.value, full.low, full.high) == (1.0, 1.0, 1.0)
    assert (none.value, none.low, none.high) == (0.0, 0.0, 0.0)


def test_transfer_is_unclipped() -> None:
    teacher = np.array([1.0, 1.0, 1.0, 0.0])
    base = np.array([1.0, 0.0, 0.0, 0.0])
    below = np.zeros(4)
    above = np.ones(4)
    assert bootstrap_transfer(teacher, base, below, n_boot=50).value == pytest.approx(-0.5)
    assert bootstrap_transfer(teacher, base, above, n_boot=50).value == pytest.approx(1.5)


def test_teacher_equal_to_base_gives_nan_interval() -> None:
    scores = np.array([1.0, 0.0, 1.0])
    interval = bootstrap_transfer(scores, scores, np.ones(3), n_boot=50)
    assert math.isnan(interval.value) and math.isnan(interval.low) and math.isnan(interval.high)


def test_mismatched_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match="same non-zero number of items"):
        bootstrap_transfer([1.0, 0.0], [0.0], [1.0, 1.0])


def test_seed_mean_is_mean_of_seed_transfers() -> None:
    cells = [_scores(s) for s in range(3)]
    interval = bootstrap_transfer_seeds(cells, n_boot=300, seed=0)
    expected = np.mean([(s.mean() - b.mean()) / (t.mean() - b.mean()) for t, b, s in cells])
    assert interval.value == pytest.approx(expected)
    assert interval.low < interval.value < interval.high
    assert interval == bootstrap_transfer_seeds(cells, n_boot=300, seed=0)


def test_bootstrap_mean() -> None:
    values = np.random.default_rng(4).normal(2.0, 1.0, size=80)
    interval = bootstrap_mean(values, n_boot=400, seed=1)
    assert interval.value == pytest.approx(values.mean())
    assert interval.low < values.mean() < interval.high
    # roughly the normal-theory width: 2 * 1.96 * sd / sqrt(n)
    width = 2 * 1.96 * values.std() / math.sqrt(values.size)
    assert interval.high - interval.low == pytest.approx(width, rel=0.25)
    assert interval == bootstrap_mean(values, n_boot=400, seed=1)
    assert math.isnan(bootstrap_mean([]).value)


def test_wilson_interval_is_honest_about_zero_events() -> None:
    none = wilson_interval(0, 100)
    assert (none.value, none.low) == (0.0, 0.0)
    assert none.high == pytest.approx(0.0370, abs=5e-4)  # about 3.8 / n, not 0
    half = wilson_interval(5, 10)
    assert half.value == 0.5 and half.low == pytest.approx(1 - half.high)
    assert 0.2 < half.low < 0.25
    assert math.isnan(wilson_interval(0, 0).value)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)


def test_percentile_bounds_can_keep_never_as_infinity() -> None:
    replicates = np.array([1.0, 2.0, 3.0, np.inf, np.inf, np.nan] * 10)
    low, high = percentile_bounds(replicates, keep_inf=True)
    assert low == 1.0 and high == math.inf
    assert percentile_bounds(replicates) == pytest.approx((1.0, 3.0), abs=0.1)


def test_normal_replicates_match_the_interval() -> None:
    draws = normal_replicates(0.5, 0.3, 0.7, 20000, np.random.default_rng(0))
    low, high = np.percentile(draws, [2.5, 97.5])
    assert (low, high) == pytest.approx((0.3, 0.7), abs=0.01)
    assert np.all(normal_replicates(0.5, math.nan, 0.7, 5, np.random.default_rng(0)) == 0.5)
    assert np.isnan(normal_replicates(math.nan, 0.1, 0.2, 3, np.random.default_rng(0))).all()


def test_transfer_replicates_share_the_item_draw() -> None:
    teacher, base, student = [1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 1.0]
    index = np.array([[0, 1, 2, 3], [0, 0, 0, 0], [3, 3, 3, 3]])
    reps = transfer_replicates(teacher, base, student, index)
    assert reps[0] == pytest.approx(transfer_of(0.75, 0.25, 0.5))
    assert reps[1] == pytest.approx(1.0)  # item 0 only: teacher 1, base 0, student 1
    assert np.isnan(reps[2])  # item 3 only: teacher == base, undefined
