"""The leaderboard: how much each profile leaks to its worst-case attacker, from records alone.

Per profile (and per task when asked), for each budget ordered by size: the worst-case
transfer, i.e. the max over attacks (and student recipes) of the seed-mean transfer, with that
attack's CI and name. From that curve:

- ``resistance = 1 - worst-case transfer at the largest budget`` (CI: ``1 - high, 1 - low`` of
  that attack's transfer CI);
- ``auc``: area under worst-case transfer vs ``log10(queries)`` (trapezoid), divided by the
  log-range of the budgets so it is in transfer units (a single budget gives its transfer);
- ``q50_queries`` / ``q50_usd``: what the worst-case attacker needed to reach 50% transfer,
  interpolated linearly in log-budget between the measured budgets (``q50_status`` says
  ``interpolated``, ``at_first_budget`` or ``not_reached``).

The x of a budget is its query limit, or the queries actually spent when the budget is in
tokens or dollars (same for dollars: the dollar limit, or the dollars spent).

The CIs of ``auc`` and ``q50_*`` come from one bootstrap of the whole worst-case curve: each
replicate resamples held-out items (one draw per held-out set, shared by every cell scored on
it, so budgets stay correlated as they are in the data) and seeds, recomputes every cell's
transfer, takes the max over attacks per budget, and recomputes the area and the crossing. A
replicate that never reaches 50% counts as ``inf``, so a bound can be "not reached". Cells
without per-item scores enter as normal draws matching their recorded interval.

The defender's side, when records carry it (``None`` fields are absent, never zero):
``utility`` (defended / teacher held-out score, CI over held-out items), ``fpr`` (flagged
benign keys / benign keys, pooled over the profile's cells, CI over keys), and for the
worst-case attacker at the largest budget: ``flagged_at`` (mean query index over the seeds it
was flagged in), ``flagged_frac``, ``transfer_at_flag`` and the watermark ``z`` next to its
clean-control ``z``.

Ranking that cannot be gamed by wrecking utility: profiles whose utility is at least
``utility_threshold`` (default 0.9) are ranked by resistance, highest first; a profile whose
resistance CI overlaps that of the first profile of the tie group above it shares that rank,
shown as ``=2``. Profiles below the threshold, or with utility not measured while others have
it, are listed after them, unranked, with the reason. When no profile has a utility, all are
ranked and the report says so. Skipped and failed cells are listed with their reason and never
counted as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from extractbench.logs.records import CellRecord
from extractbench.report.frames import records_frame, seed_means
from extractbench.stats import (
    bootstrap_mean,
    normal_replicates,
    percentile_bounds,
    transfer_replicates,
    wilson_interval,
)

__all__ = [
    "TARGET",
    "UTILITY_THRESHOLD",
    "crossing",
    "leaderboard_frame",
    "log_auc",
    "rank_labels",
    "worst_case",
    "write_leaderboard",
]

TARGET = 0.5
"""The transfer level whose cost the leaderboard reports (``q50_*``)."""

UTILITY_THRESHOLD = 0.9
"""Default minimum utility for a profile to be ranked."""

FloatArray = npt.NDArray[np.float64]


def worst_case(curves: pd.DataFrame, by_task: bool = True) -> pd.DataFrame:
    """Worst case over attacks per (profile, task, budget) of a :func:`seed_means` frame.

    Columns: profile, task, budget_label, transfer, transfer_low, transfer_high, attack,
    student, x_queries, x_usd, and the mean of the other numeric columns of the winning row.
    With ``by_task=False`` tasks are averaged per (profile, budget): the value and the CI
    bounds are the means over tasks of each task's worst case (exact for one task; for
    several the bounds are conservative), and ``attack`` lists ``task:attack`` when the
    winning attack differs between tasks.
    """
    keys = ["profile", "task", "budget_label"]
    if curves.empty:
        return pd.DataFrame(columns=[*keys, "transfer", "transfer_low", "transfer_high",
                                     "attack", "student", "x_queries", "x_usd"])
    rows: list[dict[str, object]] = []
    for _, group in curves.groupby(keys, sort=False):
        defined = group.dropna(subset=["transfer"])
        if len(defined):
            best = defined.iloc[int(np.argmax(defined["transfer"].to_numpy(dtype=float)))]
            rows.append({str(k): v for k, v in best.items()})
        else:
            row = {str(k): v for k, v in group.iloc[0].items()}
            row.update(transfer=math.nan, transfer_low=math.nan, transfer_high=math.nan,
                       attack="", student="")
            rows.append(row)
    per_task = pd.DataFrame(rows)
    if by_task:
        return per_task
    combined: list[dict[str, object]] = []
    for (profile, label), group in per_task.groupby(["profile", "budget_label"], sort=False):
        numbers = group.select_dtypes("number").mean(numeric_only=True)
        row = {str(k): v for k, v in numbers.items()}
        attacks = group["attack"].astype(str)
        students = group["student"].astype(str)
        row.update(
            profile=profile, budget_label=label,
            task=", ".join(sorted(group["task"].astype(str))),
            attack=attacks.iloc[0] if attacks.nunique() == 1 else ", ".join(
                f"{t}:{a}" for t, a in zip(group["task"], attacks, strict=True)),
            student=students.iloc[0] if students.nunique() == 1 else ", ".join(
                sorted(set(students))),
        )
        combined.append(row)
    return pd.DataFrame(combined)


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
    return float(_auc_rows(x, y[None, :])[0])


def _auc_rows(x: FloatArray, ys: FloatArray) -> FloatArray:
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
    values = _crossing_rows([x, *extra], y[None, :], target)
    return "interpolated", [float(v[0]) for v in values]


def _crossing_rows(series: Sequence[FloatArray], ys: FloatArray,
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


def rank_labels(lows: Sequence[float], highs: Sequence[float]) -> list[str]:
    """Rank labels for rows already sorted best first, given each row's CI bounds.

    A row whose interval overlaps that of the first row of the tie group above it (for the
    second row of a group: its neighbour) shares that rank, and every member of a tie is
    labelled ``=k``; otherwise a row's rank is its 1-based position. Comparing with the
    group's first row rather than always the previous row stops a chain of small overlaps
    from tying profiles whose intervals are far apart.
    """
    ranks: list[int] = []
    for i in range(len(lows)):
        leader = ranks[-1] - 1 if ranks else 0
        overlaps = i > 0 and _overlap(lows[i], highs[i], lows[leader], highs[leader])
        ranks.append(ranks[-1] if overlaps else i + 1)
    return [f"={r}" if ranks.count(r) > 1 else str(r) for r in ranks]


def _overlap(low_a: float, high_a: float, low_b: float, high_b: float) -> bool:
    if any(math.isnan(v) for v in (low_a, high_a, low_b, high_b)):
        return False
    return low_a <= high_b and low_b <= high_a


def _budget_order(wc: pd.DataFrame) -> list[str]:
    order = wc.groupby("budget_label", sort=False)["x_queries"].median()
    return [str(label) for label in order.sort_values(kind="stable").index]


# ---------------------------------------------------------------- bootstrap of the curve


def _nanmean(values: FloatArray, axis: int) -> FloatArray:
    """Mean ignoring ``nan``; ``nan`` where a slice has no number (and no warning)."""
    defined = ~np.isnan(values)
    counts = defined.sum(axis=axis)
    sums = np.where(defined, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


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
    per_seed = "n_seeds" not in rows and "seed" in rows
    chosen = {(str(w["task"]), str(w["attack"]), str(w["student"]), str(w["budget_label"]))
              for w in _records(winners)}
    cells = sorted(
        (r for r in _records(rows) if (str(r["task"]), str(r["attack"]), str(r["student"]),
                                       str(r["budget_label"])) in chosen),
        key=lambda r: (str(r["task"]), str(r["attack"]), str(r["student"]),
                       str(r["budget_label"]), int(r["seed"]) if per_seed else 0))
    seeds = sorted({int(r["seed"]) for r in cells}) if per_seed else [0]
    item_sets = sorted({(str(r["task"]), int(r["seed"]) if per_seed else 0,
                         len(r["items"].teacher)) for r in cells
                        if per_seed and r.get("items") is not None})
    draws = {key: rng.integers(0, key[2], size=(n_boot, key[2])) for key in item_sets}
    pick = rng.integers(0, len(seeds), size=(n_boot, len(seeds))) if len(seeds) > 1 else None

    groups: dict[tuple[str, str, str, str], FloatArray] = {}
    for r in cells:
        label = str(r["budget_label"])
        if label not in labels:
            continue
        s = int(r["seed"]) if per_seed else 0
        items = r.get("items") if per_seed else None
        if items is not None:
            rep = transfer_replicates(items.teacher, items.base, items.student,
                                      draws[(str(r["task"]), s, len(items.teacher))])
        else:
            rep = normal_replicates(_float(r.get("transfer")), _float(r.get("transfer_low")),
                                    _float(r.get("transfer_high")), n_boot, rng)
        key = (str(r["task"]), str(r["attack"]), str(r["student"]), label)
        matrix = groups.setdefault(key, np.full((len(seeds), n_boot), np.nan))
        matrix[seeds.index(s)] = rep

    worst: dict[tuple[str, str], FloatArray] = {}
    for (task, _attack, _student, label), matrix in groups.items():
        if pick is None:
            worst[(task, label)] = matrix[0]
        else:  # resample seeds: the same draw for every cell of the profile
            worst[(task, label)] = _nanmean(matrix[pick, np.arange(n_boot)[:, None]], axis=1)
    tasks = sorted({task for task, _ in worst})
    curve = np.full((n_boot, len(labels)), np.nan)
    for j, label in enumerate(labels):
        per_task = [worst[(t, label)] for t in tasks if (t, label) in worst]
        if per_task:
            curve[:, j] = _nanmean(np.vstack(per_task), axis=0)
    return curve


def _float(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number


def _curve_intervals(rows: pd.DataFrame, curves: pd.DataFrame, group: pd.DataFrame,
                     n_boot: int, seed: int) -> dict[str, float]:
    """CIs of ``auc`` and ``q50_*`` for one profile: ``rows`` its cells, ``curves`` their
    seed means, ``group`` its worst-case curve."""
    curve = group.dropna(subset=["transfer"])
    curve = curve[pd.to_numeric(curve["x_queries"], errors="coerce") > 0]
    curve = curve.sort_values("x_queries", kind="stable")
    names = ("auc", "q50_queries", "q50_usd")
    if curve.empty or n_boot < 1:
        return {f"{n}_{b}": math.nan for n in names for b in ("low", "high")}
    labels = [str(label) for label in curve["budget_label"]]
    ys = _curve_replicates(rows, worst_case(curves, by_task=True), labels, n_boot, seed)
    xq = curve["x_queries"].to_numpy(dtype=float)
    xu = pd.to_numeric(curve["x_usd"], errors="coerce").to_numpy(dtype=float)
    auc = _auc_rows(xq, ys)
    q50, usd50 = _crossing_rows([xq, xu], ys, TARGET)
    out: dict[str, float] = {}
    out["auc_low"], out["auc_high"] = percentile_bounds(auc)
    for name, reps in (("q50_queries", q50), ("q50_usd", usd50)):
        out[f"{name}_low"], out[f"{name}_high"] = percentile_bounds(reps, keep_inf=True)
    return out


# ---------------------------------------------------------------- the defender's side


def _numbers(frame: pd.DataFrame, column: str) -> FloatArray:
    if column not in frame:
        return np.array([], dtype=float)
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    return values[~np.isnan(values)]


MIN_BOOTSTRAP = 3
"""Fewest values (seeds) a plain mean gets a bootstrap CI from; with fewer, no CI is shown
rather than a degenerate one."""


def _mean_ci(values: FloatArray, n_boot: int, seed: int) -> tuple[float, float, float]:
    """Mean of ``values`` with a bootstrap CI when there are at least ``MIN_BOOTSTRAP``."""
    if values.size == 0:
        return math.nan, math.nan, math.nan
    if values.size < MIN_BOOTSTRAP or n_boot < 1:
        return float(values.mean()), math.nan, math.nan
    interval = bootstrap_mean(values, n_boot=n_boot, seed=seed)
    return interval.value, interval.low, interval.high


def _utility(cells: pd.DataFrame, n_boot: int, seed: int) -> dict[str, float]:
    """Utility with a CI over held-out items.

    One unit per (task, seed) held-out set (cells sharing it are averaged first, so a
    utility copied onto every cell is not counted as many measurements); units are averaged.
    With per-item defended scores (``items.defended``) the bootstrap resamples items jointly.
    Without them, each replicate resamples the teacher's item scores and keeps a binomial
    share ``utility`` of the teacher's correct answers: the model of a defense that degrades
    answers and does not fix the teacher's mistakes (exact for utility 1: CI [1, 1]). A
    utility above 1 falls back to an independent binomial draw of the defended score.
    """
    if "utility" not in cells or cells["utility"].isna().all():
        return {}
    rng = np.random.default_rng(seed)
    rows = cells.dropna(subset=["utility"])
    keys = [k for k in ("task", "seed") if k in rows]
    values: list[float] = []
    replicates: list[FloatArray] = []
    units = list(rows.groupby(keys, sort=True)) if keys else [((), rows)]
    for _, unit in units:
        utility = float(pd.to_numeric(unit["utility"]).mean())
        values.append(utility)
        items = _records(unit.head(1))[0].get("items")
        replicates.append(_utility_replicates(items, utility, n_boot, rng))
    out = {"utility": float(np.mean(values))}
    if replicates and n_boot > 0:
        low, high = percentile_bounds(_nanmean(np.vstack(replicates), axis=0))
        out.update(utility_low=low, utility_high=high)
    defended = _numbers(cells, "defended_score")
    if defended.size:
        out["defended_score"] = float(defended.mean())
    return out


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


def _fpr(cells: pd.DataFrame) -> dict[str, float]:
    """False-positive rate pooled over the profile's cells: flagged benign keys / benign keys,
    with a Wilson interval (a bootstrap of 0 flags out of n would claim ``[0, 0]``); the mean
    of recorded ``fpr`` (no interval) when no keys are counted."""
    if "fpr" not in cells or cells["fpr"].isna().all():
        return {}
    keys = int(_numbers(cells, "benign_keys").sum())
    if keys > 0:
        flagged = int(_numbers(cells, "benign_flagged_keys").sum())
        interval = wilson_interval(min(flagged, keys), keys)
        return {"fpr": interval.value, "fpr_low": interval.low, "fpr_high": interval.high,
                "benign_keys": keys}
    return {"fpr": float(_numbers(cells, "fpr").mean())}


def _worst_attacker_rows(cells: pd.DataFrame, curves: pd.DataFrame, label: str) -> pd.DataFrame:
    """The cells (all seeds) of the worst-case (attack, student) per task at budget ``label``."""
    at_label = curves[curves["budget_label"] == label]
    if at_label.empty:
        return cells.iloc[0:0]
    winners = worst_case(at_label, by_task=True)
    mask = np.zeros(len(cells), dtype=bool)
    for w in _records(winners):
        mask |= ((cells["task"] == w["task"]) & (cells["attack"] == w["attack"])
                 & (cells["student"] == w["student"])
                 & (cells["budget_label"] == label)).to_numpy()
    return cells[mask]


def _detection(cells: pd.DataFrame, curves: pd.DataFrame, label: str, n_boot: int,
               seed: int, detected: bool) -> dict[str, object]:
    """Detection and attribution of the worst-case attacker at the largest budget.
    ``detected``: some cell of the whole board was flagged, so a profile without a flag was
    never flagged (rather than not measured)."""
    out: dict[str, object] = {}
    rows = _worst_attacker_rows(cells, curves, label)
    if detected and "flagged_at" in cells:
        flagged = _numbers(rows, "flagged_at")
        if "n_seeds" in rows:  # seed means: flagged_frac is already there
            frac = _float(_numbers(rows, "flagged_frac").mean()) \
                if _numbers(rows, "flagged_frac").size else math.nan
        else:
            frac = flagged.size / len(rows) if len(rows) else math.nan
        value, low, high = _mean_ci(flagged, n_boot, seed)
        out.update(flagged_at=value, flagged_at_low=low, flagged_at_high=high,
                   flagged_frac=frac)
        every = cells["flagged_at"].notna()
        out["flagged_cells"] = f"{int(every.sum())}/{len(cells)}"
        if "transfer_at_flag" in rows and rows["transfer_at_flag"].notna().any():
            for suffix in ("", "_low", "_high"):
                values = _numbers(rows, f"transfer_at_flag{suffix}")
                out[f"transfer_at_flag{suffix}"] = float(values.mean()) if values.size \
                    else math.nan
    for name in ("watermark_z", "watermark_control_z"):
        if name in cells and cells[name].notna().any():
            value, low, high = _mean_ci(_numbers(rows, name), n_boot, seed)
            out.update({name: value, f"{name}_low": low, f"{name}_high": high})
    return out


# ---------------------------------------------------------------- the table


def _profile_row(group: pd.DataFrame, curves: pd.DataFrame) -> dict[str, object]:
    group = group.sort_values("x_queries", kind="stable")
    defined = group.dropna(subset=["transfer"])
    row: dict[str, object] = {}
    for _, point in group.iterrows():
        label = point["budget_label"]
        row[f"wc_{label}"] = point["transfer"]
        row[f"wc_{label}_low"] = point["transfer_low"]
        row[f"wc_{label}_high"] = point["transfer_high"]
        row[f"wc_{label}_attack"] = point["attack"]
        row[f"wc_{label}_student"] = point["student"]
        row[f"wc_{label}_queries"] = point["x_queries"]
    last = defined.iloc[-1] if len(defined) else None
    row["budget_max"] = last["budget_label"] if last is not None else ""
    row["resistance"] = 1 - last["transfer"] if last is not None else math.nan
    row["resistance_low"] = 1 - last["transfer_high"] if last is not None else math.nan
    row["resistance_high"] = 1 - last["transfer_low"] if last is not None else math.nan
    row["worst_attack"] = last["attack"] if last is not None else ""
    row["worst_student"] = last["student"] if last is not None else ""
    row["auc"] = log_auc(group["x_queries"], group["transfer"])
    status, (q50, usd50) = crossing(group["x_queries"], group["transfer"],
                                    others=[group["x_usd"]])
    row.update(q50_queries=q50, q50_usd=usd50, q50_status=status)
    row["teacher_score"] = _mean(curves, "teacher_score")
    row["n_cells"] = int(curves["n_seeds"].sum())
    return row


def _mean(frame: pd.DataFrame, column: str) -> float:
    if column not in frame:
        return math.nan
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan


def _mask(frame: pd.DataFrame, keys: Sequence[str], values: Sequence[object]) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for name, value in zip(keys, values, strict=True):
        mask &= frame[name] == value
    return mask


def _gate(table: pd.DataFrame, threshold: float, by: str | None = None) -> pd.DataFrame:
    """Rank profiles with utility >= threshold by resistance; list the rest after them. With
    ``by`` (e.g. ``"task"``), ranks restart in each group, groups in order of appearance."""
    measured = "utility" in table and table["utility"].notna().any()
    if measured:
        utility = pd.to_numeric(table["utility"], errors="coerce")
        ranked = (utility >= threshold).fillna(False).astype(bool)
        reasons = [
            "" if ok else ("utility not measured" if math.isnan(u)
                           else f"utility {u:.2f} < {threshold:.2f}")
            for ok, u in zip(ranked, utility.to_numpy(dtype=float), strict=True)
        ]
    else:
        ranked = pd.Series(True, index=table.index)
        reasons = [""] * len(table)
    table = table.assign(ranked=ranked.to_numpy(), unranked_reason=reasons)
    groups = [table] if by is None else [
        table[table[by] == key] for key in dict.fromkeys(table[by])]
    parts = []
    for group in groups:
        group = group.sort_values(["ranked", "resistance"], ascending=[False, False],
                                  na_position="last", kind="stable")
        top = group[group["ranked"]]
        labels = rank_labels(list(top["resistance_low"]), list(top["resistance_high"]))
        blank = len(group) - len(top)
        parts.append(group.assign(
            rank=pd.Series([int(x.lstrip("=")) for x in labels] + [None] * blank,
                           index=group.index, dtype="Int64"),
            rank_label=labels + [""] * blank))
    return pd.concat(parts).reset_index(drop=True)


def leaderboard_frame(
    frame: pd.DataFrame, by_task: bool = False, n_boot: int = 1000, seed: int = 0,
    utility_threshold: float = UTILITY_THRESHOLD, curves: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The per-profile table (per profile and task with ``by_task``) from a
    :func:`~extractbench.report.frames.records_frame` (or its
    :func:`~extractbench.report.frames.seed_means`, which loses per-item CIs), ranked profiles
    first.

    Columns: rank (nullable int; empty when not ranked), rank_label (``=k`` for ties), profile,
    [task], ranked, unranked_reason, resistance(_low/_high), budget_max, worst_attack,
    worst_student, auc(_low/_high), q50_queries(_low/_high), q50_usd(_low/_high), q50_status,
    teacher_score, n_cells, then when records carry them: utility(_low/_high),
    defended_score, fpr(_low/_high), benign_keys, flagged_at(_low/_high), flagged_frac,
    flagged_cells, transfer_at_flag(_low/_high), watermark_z(_low/_high),
    watermark_control_z(_low/_high); then per budget ``wc_<label>`` with ``_low``, ``_high``,
    ``_attack``, ``_student`` and ``_queries`` (the budget's x: query limit, or queries
    spent). ``q50_*_high`` is ``inf`` when the bootstrap's upper bound never reaches 50%.
    ``curves`` may pass an already computed :func:`seed_means` of ``frame``.
    """
    is_curves = "n_seeds" in frame
    if curves is None:
        curves = frame if is_curves else seed_means(frame, n_boot=n_boot, seed=seed)
    cells = frame if is_curves or "status" not in frame else frame[frame["status"] == "ok"]
    wc = worst_case(curves, by_task=by_task)
    keys = ["profile", "task"] if by_task else ["profile"]
    if wc.empty:
        return pd.DataFrame(columns=["rank", "rank_label", *keys, "ranked", "resistance"])
    detected = "flagged_at" in cells and bool(cells["flagged_at"].notna().any())
    rows = []
    for key, group in wc.groupby(keys, sort=False):
        key_values = key if isinstance(key, tuple) else (key,)
        sub_curves = curves[_mask(curves, keys, key_values)]
        sub_cells = cells[_mask(cells, keys, key_values)]
        row: dict[str, object] = dict(zip(keys, key_values, strict=True))
        row.update(_profile_row(group, sub_curves))
        row.update(_curve_intervals(sub_cells, sub_curves, group, n_boot, seed))
        row.update(_utility(sub_cells, n_boot, seed))
        row.update(_fpr(sub_cells))
        if row["budget_max"]:
            row.update(_detection(sub_cells, sub_curves, str(row["budget_max"]), n_boot, seed,
                                  detected))
        rows.append(row)
    table = _gate(pd.DataFrame(rows), utility_threshold, "task" if by_task else None)
    order = ["rank", "rank_label", *keys, "ranked", "unranked_reason", "resistance",
             "resistance_low", "resistance_high", "budget_max", "worst_attack", "worst_student",
             "auc", "auc_low", "auc_high", "q50_queries", "q50_queries_low",
             "q50_queries_high", "q50_usd", "q50_usd_low", "q50_usd_high", "q50_status",
             "teacher_score", "n_cells"]
    head = [c for c in order if c in table]
    head += [c for c in table.columns if c not in head and not c.startswith("wc_")]
    budget_columns = [f"wc_{label}{suffix}" for label in _budget_order(wc)
                      for suffix in ("", "_low", "_high", "_attack", "_student", "_queries")]
    return table[head + [c for c in budget_columns if c in table]]


# ---------------------------------------------------------------- outputs


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in ("items",) if c in frame])


def _first_seen(values: Iterable[object]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values))


PLOT_STEMS = ("transfer_vs_budget", "transfer_vs_cost", "resistance_vs_utility",
              "detection_timeline")


def common_tasks(frame: pd.DataFrame) -> list[str]:
    """The tasks every profile has a measured (``ok``) cell on, in first-seen order. The
    overall table compares profiles on these only: averaging one profile over four task
    families and another over one would rank the task mix, not the defense."""
    ok = frame[frame["status"] == "ok"] if "status" in frame else frame
    if ok.empty:
        return []
    per_profile = [set(g["task"]) for _, g in ok.groupby("profile", sort=False)]
    shared = set.intersection(*per_profile)
    return [t for t in _first_seen(ok["task"]) if t in shared]


def write_leaderboard(
    records: Sequence[CellRecord], out_dir: Path, by_task: bool | None = None,
    n_boot: int = 1000, seed: int = 0, plots: bool = True, html: bool = True,
    utility_threshold: float = UTILITY_THRESHOLD,
) -> list[Path]:
    """Write ``leaderboard.md``, ``leaderboard.csv`` (the per-profile table), ``cells.csv``
    (every cell, failed ones included), ``leaderboard.html`` (self-contained: tables and
    plots embedded) and the plots (PNG and SVG) into ``out_dir``; return the paths, the
    Markdown file first.

    ``by_task=None`` adds a per-(profile, task) table when there are several tasks
    (``leaderboard.csv`` then has one row per profile and task). Records from several runs
    merge (see :func:`~extractbench.report.frames.load_records`).
    """
    from extractbench.report.document import render_html, render_markdown, report_sections

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = records_frame(records)
    if frame.empty:
        raise ValueError("no records to build a leaderboard from")
    several_tasks = frame["task"].nunique() > 1
    per_task = several_tasks if by_task is None else by_task
    curves = seed_means(frame, n_boot=n_boot, seed=seed)
    compared = common_tasks(frame) or _first_seen(frame["task"])
    table = leaderboard_frame(frame[frame["task"].isin(compared)], by_task=False,
                              n_boot=n_boot, seed=seed, utility_threshold=utility_threshold,
                              curves=curves[curves["task"].isin(compared)])
    task_table = leaderboard_frame(frame, by_task=True, n_boot=n_boot, seed=seed,
                                   utility_threshold=utility_threshold, curves=curves) \
        if per_task else None

    csv_path = out_dir / "leaderboard.csv"
    (task_table if task_table is not None else table).to_csv(csv_path, index=False)
    cells_path = out_dir / "cells.csv"
    _csv_frame(frame).to_csv(cells_path, index=False)

    figures: list[Path] = []
    if plots:
        # plots of an earlier board (one per task, or one for all) would be left behind
        for stem in PLOT_STEMS:
            for old in [*out_dir.glob(f"{stem}.*"), *out_dir.glob(f"{stem}-*.*")]:
                if old.suffix in (".png", ".svg"):
                    old.unlink()
    if plots and (frame["status"] == "ok").any():
        from extractbench.report import plots as p

        order = _first_seen(frame["profile"])
        figures += p.plot_transfer_vs_budget(curves, out_dir / "transfer_vs_budget", order)
        figures += p.plot_transfer_vs_cost(curves, out_dir / "transfer_vs_cost", order)
        figures += p.plot_resistance_vs_utility(table, out_dir / "resistance_vs_utility",
                                                utility_threshold, order)
        figures += p.plot_detection_timeline(curves, out_dir / "detection_timeline", order)

    sections = report_sections(frame, table, task_table, figures, utility_threshold,
                               compared_tasks=compared)
    title = "extractbench leaderboard"
    md_path = out_dir / "leaderboard.md"
    md_path.write_text(render_markdown(title, sections), encoding="utf-8")
    paths = [md_path, csv_path, cells_path]
    if html:
        html_path = out_dir / "leaderboard.html"
        html_path.write_text(render_html(title, sections), encoding="utf-8")
        paths.append(html_path)
    return [*paths, *figures]
