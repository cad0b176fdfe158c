"""The defender's side of a leaderboard row: utility for benign users, false-positive rate,
and detection and attribution of the worst-case attacker; plus the per-(profile, attack)
detection table. ``None`` fields of the records are absent here, never zero.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from extractbench.report import columns as c
from extractbench.report.bootstrap import nanmean, records
from extractbench.report.calibration import calibrated, sim_times
from extractbench.report.curve import FloatArray
from extractbench.report.rows import (
    Cohort,
    Detection,
    DetectionRow,
    Estimate,
    Fpr,
    Harmed,
    Utility,
)
from extractbench.stats import bootstrap_mean, percentile_bounds, wilson_interval

__all__ = ["MIN_BOOTSTRAP", "at_largest_budget", "cohorts", "detection", "detection_rows", "fpr",
           "harmed", "utility"]


def numbers(frame: pd.DataFrame, column: str) -> FloatArray:
    """The defined numbers of ``frame[column]`` (empty when there is no such column)."""
    if column not in frame:
        return np.array([], dtype=float)
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    return values[~np.isnan(values)]


MIN_BOOTSTRAP = 3
"""Fewest values (seeds) a plain mean gets a bootstrap CI from; with fewer, no CI is shown
rather than a degenerate one."""


def mean_ci(values: FloatArray, n_boot: int, seed: int) -> Estimate:
    """Mean of ``values`` with a bootstrap CI when there are at least ``MIN_BOOTSTRAP``."""
    if values.size == 0:
        return Estimate(math.nan)
    if values.size < MIN_BOOTSTRAP or n_boot < 1:
        return Estimate(float(values.mean()))
    interval = bootstrap_mean(values, n_boot=n_boot, seed=seed)
    return Estimate(interval.value, interval.low, interval.high)


def utility(cells: pd.DataFrame, n_boot: int, seed: int) -> Utility | None:
    """Utility with a CI over held-out items.

    One unit per (task, seed) held-out set (cells sharing it are averaged first, so a
    utility copied onto every cell is not counted as many measurements); units are averaged.
    With per-item defended scores (``items.defended``) the bootstrap resamples items jointly.
    Without them, each replicate resamples the teacher's item scores and keeps a binomial
    share ``utility`` of the teacher's correct answers: the model of a defense that degrades
    answers and does not fix the teacher's mistakes (exact for utility 1: CI [1, 1]). A
    utility above 1 falls back to an independent binomial draw of the defended score.
    """
    if c.UTILITY not in cells or cells[c.UTILITY].isna().all():
        return None
    rng = np.random.default_rng(seed)
    rows = cells.dropna(subset=[c.UTILITY])
    keys = [k for k in (c.TASK, c.SEED) if k in rows]
    values: list[float] = []
    replicates: list[FloatArray] = []
    units = list(rows.groupby(keys, sort=True)) if keys else [((), rows)]
    for _, unit in units:
        value = float(pd.to_numeric(unit[c.UTILITY]).mean())
        values.append(value)
        items = records(unit.head(1))[0].get(c.ITEMS)
        replicates.append(_utility_replicates(items, value, n_boot, rng))
    low = high = None
    if replicates and n_boot > 0:
        low, high = percentile_bounds(nanmean(np.vstack(replicates), axis=0))
    defended = numbers(cells, c.DEFENDED_SCORE)
    return Utility(float(np.mean(values)), low, high,
                   float(defended.mean()) if defended.size else None)


def _utility_replicates(items: Any, utility: float, n_boot: int,
                        rng: np.random.Generator) -> FloatArray:
    if items is None or len(items.teacher) == 0:
        return np.full(n_boot, np.nan)
    teacher = np.asarray(items.teacher, dtype=float)
    index = rng.integers(0, teacher.size, size=(n_boot, teacher.size))
    teacher_sum = teacher[index].sum(axis=1)
    per_item = getattr(items, "defended", None)
    if per_item is not None:
        defended_sum = np.asarray(per_item, dtype=float)[index].sum(axis=1)
    elif utility <= 1:
        kept = np.rint(teacher_sum).astype(np.int64)
        defended_sum = rng.binomial(kept, max(utility, 0.0)).astype(float)
        teacher_sum = kept.astype(float)
    else:
        p = min(utility * teacher.mean(), 1.0)
        defended_sum = rng.binomial(teacher.size, p, size=n_boot).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rep = defended_sum / teacher_sum
    return np.where(np.isfinite(rep), rep, np.nan)


def fpr(cells: pd.DataFrame) -> Fpr | None:
    """False-positive rate pooled over the profile's cells: flagged benign keys / benign keys,
    with a Wilson interval (a bootstrap of 0 flags out of n would claim ``[0, 0]``); the mean
    of recorded ``fpr`` (no interval) when no keys are counted."""
    if c.FPR not in cells or cells[c.FPR].isna().all():
        return None
    keys = int(numbers(cells, c.BENIGN_KEYS).sum())
    if keys > 0:
        flagged = int(numbers(cells, c.BENIGN_FLAGGED_KEYS).sum())
        interval = wilson_interval(min(flagged, keys), keys)
        return Fpr(interval.value, interval.low, interval.high, keys)
    return Fpr(float(numbers(cells, c.FPR).mean()))


def harmed(cells: pd.DataFrame) -> Harmed | None:
    """The harmed-key rate pooled over the profile's cells: benign keys any defense acted on
    / benign keys, with a Wilson interval; ``None`` when the records do not count harms (runs
    made before they did)."""
    if c.HARMED_RATE not in cells or cells[c.HARMED_RATE].isna().all():
        return None
    rows = cells[cells[c.HARMED_RATE].notna()]
    keys = int(numbers(rows, c.BENIGN_KEYS).sum())
    if keys <= 0:
        return None
    return _pooled(int(numbers(rows, c.BENIGN_HARMED_KEYS).sum()), keys)


def _pooled(hit: int, keys: int) -> Harmed:
    """``hit`` harmed of ``keys`` with a Wilson interval (``nan`` without keys)."""
    if keys <= 0:
        return Harmed(math.nan, math.nan, math.nan, 0)
    interval = wilson_interval(min(hit, keys), keys)
    return Harmed(interval.value, interval.low, interval.high, keys)


def cohorts(cells: pd.DataFrame) -> tuple[Cohort, ...]:
    """Per benign cohort over the profile's cells (records with ``benign_cohorts``): its
    utility with a bootstrap 95% interval, and harmed keys / keys pooled with a Wilson
    interval. When every cell records each user's utility (``user_utility``) the utility is the
    mean over the cohort's users pooled over the cells and the interval resamples users;
    otherwise (older records) it is the mean over the cells, resampling cells (two or more).
    ``mixed``: per other task the cohort also asked about, its utility there, the mean over
    the cells. Empty when no record carries cohorts, or only the scenario's single unnamed
    cohort (the row's own utility, FPR and harmed columns already say it)."""
    if c.BENIGN_COHORTS not in cells:
        return ()
    utilities: dict[str, list[float]] = {}
    users: dict[str, list[float] | None] = {}
    counts: dict[str, list[int]] = {}
    mixed: dict[str, dict[str, list[float]]] = {}
    for raw in cells[c.BENIGN_COHORTS]:
        data = json.loads(raw) if isinstance(raw, str) else raw
        for name, figures in (data or {}).items():
            n, hit = counts.setdefault(name, [0, 0])
            counts[name] = [n + int(figures["keys"]), hit + int(figures["harmed_keys"])]
            if figures.get("utility") is not None:
                utilities.setdefault(name, []).append(float(figures["utility"]))
            for other, value in (figures.get("mixed_utility") or {}).items():
                mixed.setdefault(name, {}).setdefault(other, []).append(float(value))
            mine = figures.get("user_utility")
            pooled = users.setdefault(name, [])
            users[name] = None if mine is None or pooled is None else pooled + list(mine)
    if set(counts) <= {""}:
        return ()
    out = []
    for name, (n, hit) in counts.items():
        values = users.get(name) or utilities.get(name, [])
        spread = bootstrap_mean(values, seed=0) if len(values) > 1 else None
        out.append(Cohort(name, float(np.mean(values)) if values else math.nan,
                          _pooled(hit, n),
                          spread.low if spread is not None else math.nan,
                          spread.high if spread is not None else math.nan,
                          over="users" if users.get(name) else "cells",
                          mixed=tuple((k, float(np.mean(v)))
                                      for k, v in sorted(mixed.get(name, {}).items()))))
    return tuple(out)


def _attacker_rows(cells: pd.DataFrame, winners: pd.DataFrame, label: str) -> pd.DataFrame:
    """The cells (all seeds) of the worst-case (attack, student) per task at budget ``label``;
    ``winners``: the per-task worst case at that budget."""
    if winners.empty:
        return cells.iloc[0:0]
    mask = np.zeros(len(cells), dtype=bool)
    for w in records(winners):
        mask |= ((cells[c.TASK] == w[c.TASK]) & (cells[c.ATTACK] == w[c.ATTACK])
                 & (cells[c.STUDENT] == w[c.STUDENT])
                 & (cells[c.BUDGET_LABEL] == label)).to_numpy()
    return cells[mask]


def detection(cells: pd.DataFrame, winners: pd.DataFrame, label: str, n_boot: int, seed: int,
              detected: bool) -> Detection:
    """Detection and attribution of the worst-case attacker at the largest budget ``label``
    (``winners``: the per-task worst case at that budget). ``detected``: some cell of the
    whole board was flagged, so a profile without a flag was never flagged (rather than not
    measured)."""
    rows = _attacker_rows(cells, winners, label)
    flagged_at, frac, flagged_cells, at_flag = None, math.nan, "", None
    if detected and c.FLAGGED_AT in cells:
        flagged = numbers(rows, c.FLAGGED_AT)
        if c.N_SEEDS in rows:  # seed means: flagged_frac is already there
            fracs = numbers(rows, c.FLAGGED_FRAC)
            frac = float(fracs.mean()) if fracs.size else math.nan
        else:
            frac = flagged.size / len(rows) if len(rows) else math.nan
        flagged_at = mean_ci(flagged, n_boot, seed)
        flagged_cells = f"{int(cells[c.FLAGGED_AT].notna().sum())}/{len(cells)}"
        if c.TRANSFER_AT_FLAG in rows and rows[c.TRANSFER_AT_FLAG].notna().any():
            at_flag = Estimate(*(_plain_mean(rows, name) for name in (
                c.TRANSFER_AT_FLAG, c.low(c.TRANSFER_AT_FLAG), c.high(c.TRANSFER_AT_FLAG))))
    z: dict[str, Estimate | None] = {}
    for name in (c.WATERMARK_Z, c.WATERMARK_CONTROL_Z):
        measured = name in cells and cells[name].notna().any()
        z[name] = mean_ci(numbers(rows, name), n_boot, seed) if measured else None
    return Detection(flagged_at, frac, flagged_cells, at_flag, z[c.WATERMARK_Z],
                     z[c.WATERMARK_CONTROL_Z])


def _plain_mean(rows: pd.DataFrame, column: str) -> float:
    values = numbers(rows, column)
    return float(values.mean()) if values.size else math.nan


def detection_rows(frame: pd.DataFrame) -> list[DetectionRow]:
    """Per (profile, attack) at that profile's largest budget: flags, transfer at the flag,
    watermark, the detector's calibration and the simulated times to the flag and to 50%
    transfer; plain means over seeds of the cells' own numbers. Empty when no ok cell records
    a flag, a watermark or a calibration."""
    ok = frame[frame[c.STATUS] == c.OK]
    wanted = [n for n in (c.FLAGGED_AT, c.WATERMARK_Z, c.CAL_TEST)
              if n in ok and ok[n].notna().any()]
    if ok.empty or not wanted:
        return []
    out: list[DetectionRow] = []
    for (profile, attack), group in ok.groupby([c.PROFILE, c.ATTACK], sort=False):
        top = at_largest_budget(group)
        flags = pd.to_numeric(top[c.FLAGGED_AT], errors="coerce") \
            if c.FLAGGED_AT in top else pd.Series(dtype=float)
        n_flag = int(flags.notna().sum())
        at_flag = None
        if c.TRANSFER_AT_FLAG in top and not math.isnan(_mean(top, c.TRANSFER_AT_FLAG)):
            at_flag = Estimate(_mean(top, c.TRANSFER_AT_FLAG),
                               _mean(top, c.low(c.TRANSFER_AT_FLAG)),
                               _mean(top, c.high(c.TRANSFER_AT_FLAG)))
        out.append(DetectionRow(
            str(profile), str(attack), tuple(dict.fromkeys(str(v) for v in top[c.BUDGET_LABEL])),
            _mean(top, c.TRANSFER), n_flag, len(top), _mean(top, c.FLAGGED_AT), at_flag,
            _mean(top, c.WATERMARK_Z), _mean(top, c.WATERMARK_CONTROL_Z), calibrated(top),
            sim_times(top)))
    return out


def at_largest_budget(group: pd.DataFrame) -> pd.DataFrame:
    """The cells of ``group`` at its largest budget: the largest query limit, or the most
    queries spent for budgets without one."""
    x = pd.to_numeric(group[c.BUDGET_QUERIES], errors="coerce").fillna(
        pd.to_numeric(group[c.QUERIES], errors="coerce"))
    return group[x == x.max()]


def _mean(rows: pd.DataFrame, column: str) -> float:
    if column not in rows:
        return math.nan
    values = pd.to_numeric(rows[column], errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan
