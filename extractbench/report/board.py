"""One leaderboard table: a :class:`~extractbench.report.rows.ProfileSummary` per profile (or
per profile and task) from the worst-case curves, gated by utility and ranked by resistance.

Ranking that cannot be gamed by wrecking utility: profiles whose utility is at least the
threshold are ranked by resistance, highest first; a profile whose resistance CI overlaps that
of the first profile of the tie group above it shares that rank (``=2``). Profiles below the
threshold, or with utility not measured while others have it, follow unranked, with the
reason. When no profile has a utility, all are ranked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pandas as pd

from extractbench.report import columns as c
from extractbench.report.bootstrap import curve_intervals, to_float
from extractbench.report.curve import crossing, log_auc, rank_labels
from extractbench.report.defender import detection, fpr, utility
from extractbench.report.frames import seed_means
from extractbench.report.rows import Estimate, ProfileSummary, WorstPoint
from extractbench.report.worst import budget_order, combine_tasks, worst_case

__all__ = ["UTILITY_THRESHOLD", "Board", "build_board", "leaderboard_frame"]

UTILITY_THRESHOLD = 0.9
"""Default minimum utility for a profile to be ranked."""

HEAD = [c.RANK, c.RANK_LABEL, c.PROFILE, c.TASK, c.RANKED, c.UNRANKED_REASON, c.RESISTANCE,
        c.low(c.RESISTANCE), c.high(c.RESISTANCE), c.BUDGET_MAX, c.WORST_ATTACK,
        c.WORST_STUDENT, c.AUC, c.low(c.AUC), c.high(c.AUC), c.Q50_QUERIES,
        c.low(c.Q50_QUERIES), c.high(c.Q50_QUERIES), c.Q50_USD, c.low(c.Q50_USD),
        c.high(c.Q50_USD), c.Q50_STATUS, c.TEACHER_SCORE, c.N_CELLS]
"""The leaderboard's first columns, in order; the defender's follow, then the budgets'."""


@dataclass(frozen=True)
class Board:
    """A ranked table of profile summaries."""

    keys: tuple[str, ...]
    """``(profile,)`` or ``(profile, task)``."""
    summaries: tuple[ProfileSummary, ...]
    """Ranked rows first (best first), then the unranked; per task with ``task`` keys."""
    built: tuple[int, ...]
    """Each summary's position in the order the profiles were first seen."""
    budgets: tuple[str, ...]
    """Budget labels ordered by size (median x)."""

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame (see :func:`leaderboard_frame` for its columns)."""
        if not self.summaries:
            return pd.DataFrame(columns=[c.RANK, c.RANK_LABEL, *self.keys, c.RANKED,
                                         c.RESISTANCE])
        first_seen = sorted(range(len(self.summaries)), key=lambda i: self.built[i])
        table = pd.DataFrame([self.summaries[i].columns() for i in first_seen])
        table = table.iloc[[first_seen.index(i) for i in range(len(first_seen))]]
        table = table.reset_index(drop=True)
        table[c.RANK] = pd.array([s.rank for s in self.summaries], dtype="Int64")
        head = [name for name in HEAD if name in table]
        head += [name for name in table.columns
                 if name not in head and not name.startswith(c.WC_PREFIX)]
        budget_columns = [c.wc(label, suffix) for label in self.budgets
                          for suffix in c.WC_SUFFIXES]
        return table[head + [name for name in budget_columns if name in table]]


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


def _summary(keys: dict[str, str], group: pd.DataFrame, curves: pd.DataFrame,
             cells: pd.DataFrame, winners: pd.DataFrame, n_boot: int, seed: int,
             detected: bool) -> ProfileSummary:
    """The row of one profile (and task): ``group`` its worst-case curve, ``curves`` and
    ``cells`` its seed means and ok cells, ``winners`` its per-task worst case."""
    group = group.sort_values(c.X_QUERIES, kind="stable")
    defined = group.dropna(subset=[c.TRANSFER])
    curve = tuple(
        WorstPoint(str(p[c.BUDGET_LABEL]), Estimate(to_float(p[c.TRANSFER]),
                                                    to_float(p[c.TRANSFER_LOW]),
                                                    to_float(p[c.TRANSFER_HIGH])),
                   str(p[c.ATTACK]), str(p[c.STUDENT]), to_float(p[c.X_QUERIES]))
        for _, p in group.iterrows())
    last = defined.iloc[-1] if len(defined) else None
    label = str(last[c.BUDGET_LABEL]) if last is not None else ""
    resistance = Estimate(1 - last[c.TRANSFER], 1 - last[c.TRANSFER_HIGH],
                          1 - last[c.TRANSFER_LOW]) if last is not None else Estimate(math.nan)
    status, (q50, usd50) = crossing(group[c.X_QUERIES], group[c.TRANSFER],
                                    others=[group[c.X_USD]])
    auc_ci, q50_ci, usd_ci = curve_intervals(cells, winners, group, n_boot, seed)
    return ProfileSummary(
        keys=keys, curve=curve, budget_max=label, resistance=resistance,
        worst_attack=str(last[c.ATTACK]) if last is not None else "",
        worst_student=str(last[c.STUDENT]) if last is not None else "",
        auc=Estimate(log_auc(group[c.X_QUERIES], group[c.TRANSFER]), *auc_ci),
        q50_queries=Estimate(q50, *q50_ci), q50_usd=Estimate(usd50, *usd_ci), q50_status=status,
        teacher_score=_mean(curves, c.TEACHER_SCORE), n_cells=int(curves[c.N_SEEDS].sum()),
        utility=utility(cells, n_boot, seed), fpr=fpr(cells),
        detection=detection(cells, winners[winners[c.BUDGET_LABEL] == label], label, n_boot,
                            seed, detected) if label else None)


def _gate(rows: list[ProfileSummary], threshold: float,
          by_task: bool) -> list[tuple[int, ProfileSummary]]:
    """Rank rows with utility >= threshold by resistance and list the rest after them; with
    ``by_task`` ranks restart in each task, tasks in order of appearance. Returns (position
    in ``rows``, ranked row) pairs."""
    measured = any(r.utility is not None for r in rows)
    gated: list[ProfileSummary] = []
    for r in rows:
        u = r.utility.value if r.utility is not None else math.nan
        ok = not measured or u >= threshold
        reason = "" if ok else ("utility not measured" if math.isnan(u)
                                else f"utility {u:.2f} < {threshold:.2f}")
        gated.append(replace(r, ranked=ok, unranked_reason=reason))
    groups = [list(range(len(gated)))] if not by_task else [
        [i for i, r in enumerate(gated) if r.keys[c.TASK] == task]
        for task in dict.fromkeys(r.keys[c.TASK] for r in gated)]
    out: list[tuple[int, ProfileSummary]] = []
    for members in groups:
        def order(i: int) -> tuple[bool, bool, float]:
            value = gated[i].resistance.value
            return (not gated[i].ranked, math.isnan(value), 0.0 if math.isnan(value) else -value)

        members = sorted(members, key=order)
        top = [i for i in members if gated[i].ranked]
        labels = rank_labels([gated[i].resistance.low for i in top],
                             [gated[i].resistance.high for i in top])
        for i, label in zip(top, labels, strict=True):
            out.append((i, replace(gated[i], rank=int(label.lstrip("=")), rank_label=label)))
        out += [(i, gated[i]) for i in members if not gated[i].ranked]
    return out


def build_board(cells: pd.DataFrame, curves: pd.DataFrame, per_task: pd.DataFrame,
                by_task: bool, n_boot: int, seed: int, utility_threshold: float) -> Board:
    """The table over ``cells`` (ok cells, or seed means), their seed means ``curves`` and
    their per-task worst case ``per_task`` (:func:`~extractbench.report.worst.worst_case`)."""
    keys = (c.PROFILE, c.TASK) if by_task else (c.PROFILE,)
    wc = per_task if by_task else combine_tasks(per_task)
    if wc.empty:
        return Board(keys, (), (), ())
    detected = c.FLAGGED_AT in cells and bool(cells[c.FLAGGED_AT].notna().any())
    rows = []
    for key, group in wc.groupby(list(keys), sort=False):
        values = key if isinstance(key, tuple) else (key,)
        rows.append(_summary(
            dict(zip(keys, (str(v) for v in values), strict=True)), group,
            curves[_mask(curves, keys, values)], cells[_mask(cells, keys, values)],
            per_task[_mask(per_task, keys, values)], n_boot, seed, detected))
    ranked = _gate(rows, utility_threshold, by_task)
    return Board(keys, tuple(r for _, r in ranked), tuple(i for i, _ in ranked),
                 tuple(budget_order(wc)))


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
    is_curves = c.N_SEEDS in frame
    if curves is None:
        curves = frame if is_curves else seed_means(frame, n_boot=n_boot, seed=seed)
    cells = frame if is_curves or c.STATUS not in frame else frame[frame[c.STATUS] == c.OK]
    return build_board(cells, curves, worst_case(curves, by_task=True), by_task, n_boot, seed,
                       utility_threshold).frame()
