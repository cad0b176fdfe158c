"""One leaderboard table: a :class:`~extractbench.report.rows.ProfileSummary` per profile (or
per profile and task) from the worst-case curves over the ranking set, gated by completeness
and utility, and ranked by resistance.

Like for like: every row's curve is the worst case over the ranking set's attacks
(:mod:`~extractbench.report.requirement`) at the board's common budgets, x being the queries
actually spent; resistance is read at the largest common budget, AUC and the 50% crossing are
computed only over the whole set of common budgets. A profile not measured on the whole ranking
set is listed, unranked, as ``incomplete: ...`` saying what is missing.

Ranking that cannot be gamed by wrecking utility: complete profiles whose utility is at least
the threshold are ranked by resistance, highest first; a profile whose resistance CI overlaps
that of the first profile of the tie group above it shares that rank (``=2``). Profiles below
the threshold, or with utility not measured while others have it, follow unranked, with the
reason. When no profile has a utility, every complete profile is ranked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pandas as pd

from extractbench.report import columns as c
from extractbench.report.bootstrap import curve_intervals, to_float
from extractbench.report.curve import crossing, log_auc, rank_labels
from extractbench.report.defender import cohorts, detection, fpr, harmed, utility
from extractbench.report.rows import Estimate, ProfileSummary, WorstPoint
from extractbench.report.worst import combine_tasks

if TYPE_CHECKING:
    from extractbench.config.scenario import Ranking

__all__ = ["MAX_HARMED", "MIN_BENIGN_KEYS", "NOT_MEASURED", "UTILITY_THRESHOLD", "Board",
           "Scope", "build_board", "leaderboard_frame"]

UTILITY_THRESHOLD = 0.9
"""Default minimum utility for a profile to be ranked."""

MAX_HARMED = 0.05
"""Most benign keys (a share) a ranked profile's defenses may act on: flag, refuse,
throttle, degrade, or take away something asked for (when the records count harms)."""

MIN_BENIGN_KEYS = 50
"""Fewest benign keys a ranked profile's harmed share rests on, pooled over its cells: in all
and in each named cohort (50 keys with none harmed still leave a Wilson upper bound of 7%)."""

NOT_MEASURED = "not_measured"
"""``q50_status`` of a row not measured at every common budget (no AUC or crossing then)."""

HEAD = [c.RANK, c.RANK_LABEL, c.PROFILE, c.TASK, c.RANKED, c.UNRANKED_REASON, c.COMPLETE,
        c.MISSING, c.RESISTANCE, c.low(c.RESISTANCE), c.high(c.RESISTANCE), c.BUDGET_MAX,
        c.WORST_ATTACK, c.WORST_STUDENT, c.AUC, c.low(c.AUC), c.high(c.AUC), c.Q50_QUERIES,
        c.low(c.Q50_QUERIES), c.high(c.Q50_QUERIES), c.Q50_USD, c.low(c.Q50_USD),
        c.high(c.Q50_USD), c.Q50_STATUS, c.TEACHER_SCORE, c.N_CELLS]
"""The leaderboard's first columns, in order; the defender's follow, then the budgets'."""


@dataclass(frozen=True)
class Scope:
    """What one board compares on."""

    rows: Mapping[tuple[str, ...], str]
    """Every row to list, by its key values (``(profile,)`` or ``(profile, task)``), in
    order, with what it misses of the ranking set (``""``: complete)."""
    budgets: Mapping[str, tuple[str, ...]]
    """The common budgets, smallest first, by task (``""``: the overall board's)."""


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
    """The common budget labels, smallest first (per task: those of every task)."""

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


def _point(p: pd.Series) -> WorstPoint:
    return WorstPoint(str(p[c.BUDGET_LABEL]),
                      Estimate(to_float(p[c.TRANSFER]), to_float(p[c.TRANSFER_LOW]),
                               to_float(p[c.TRANSFER_HIGH])),
                      str(p[c.ATTACK]), str(p[c.STUDENT]), to_float(p[c.X_QUERIES]),
                      to_float(p.get(c.BUDGET_QUERIES)),
                      0.0 if math.isnan(to_float(p.get(c.BUDGET_SHORT)))
                      else to_float(p.get(c.BUDGET_SHORT)), to_float(p.get(c.UNCONVERGED)))


def _summary(keys: dict[str, str], group: pd.DataFrame, budgets: Sequence[str],
             cells: pd.DataFrame, measured: pd.DataFrame, winners: pd.DataFrame, n_boot: int,
             seed: int, detected: bool, missing: str) -> ProfileSummary:
    """The row of one profile (and task): ``group`` its worst-case curve over the ranking set,
    ``budgets`` the common budgets, ``cells`` its ok cells inside the ranking set,
    ``measured`` all its ok cells (utility, FPR, teacher), ``winners`` its per-task worst
    case."""
    at = {str(p[c.BUDGET_LABEL]): p for _, p in group.iterrows()
          if str(p[c.BUDGET_LABEL]) in budgets}
    curve = tuple(_point(at[label]) for label in budgets if label in at)
    label = budgets[-1] if budgets else ""
    last = at.get(label)
    if last is not None and math.isnan(to_float(last[c.TRANSFER])):
        last = None
    resistance = Estimate(1 - last[c.TRANSFER], 1 - last[c.TRANSFER_HIGH],
                          1 - last[c.TRANSFER_LOW]) if last is not None else Estimate(math.nan)
    full = pd.DataFrame([at[b] for b in budgets if b in at])
    if len(budgets) and len(full) == len(budgets) and full[c.TRANSFER].notna().all():
        status, (q50, usd50) = crossing(full[c.X_QUERIES], full[c.TRANSFER],
                                        others=[full[c.X_USD]])
        area = log_auc(full[c.X_QUERIES], full[c.TRANSFER])
        auc_ci, q50_ci, usd_ci = curve_intervals(cells, winners, full, n_boot, seed)
    else:
        status, q50, usd50, area = NOT_MEASURED, math.nan, math.nan, math.nan
        auc_ci = q50_ci = usd_ci = (math.nan, math.nan)
    return ProfileSummary(
        keys=keys, curve=curve, budget_max=label, resistance=resistance,
        worst_attack=str(last[c.ATTACK]) if last is not None else "",
        worst_student=str(last[c.STUDENT]) if last is not None else "",
        auc=Estimate(area, *auc_ci), q50_queries=Estimate(q50, *q50_ci),
        q50_usd=Estimate(usd50, *usd_ci), q50_status=status,
        teacher_score=_mean(measured, c.TEACHER_SCORE), n_cells=len(cells),
        utility=utility(measured, n_boot, seed), fpr=fpr(measured), harmed=harmed(measured),
        cohorts=cohorts(measured),
        detection=detection(cells, winners[winners[c.BUDGET_LABEL] == label], label, n_boot,
                            seed, detected) if last is not None else None,
        complete=not missing, missing=missing)


def _gate(rows: list[ProfileSummary], threshold: float,
          by_task: bool) -> list[tuple[int, ProfileSummary]]:
    """Rank the complete rows with utility >= threshold by resistance and list the rest after
    them, with the reason; with ``by_task`` ranks restart in each task, tasks in order of
    appearance. Returns (position in ``rows``, ranked row) pairs."""
    measured = any(r.utility is not None for r in rows)
    gated: list[ProfileSummary] = []
    for r in rows:
        u = r.utility.value if r.utility is not None else math.nan
        reasons = [] if r.complete else [f"incomplete: {r.missing}"]
        if measured and not u >= threshold:
            if not math.isnan(u):
                reasons.append(f"utility {u:.2f} < {threshold:.2f}")
            elif r.complete:  # an incomplete row says what it misses, utility included
                reasons.append("utility not measured")
        if r.harmed is not None and r.harmed.value > MAX_HARMED:
            reasons.append(f"harmed {r.harmed.value:.1%} of {r.harmed.benign_keys} benign keys "
                           f"> {MAX_HARMED:.0%}")
        if r.harmed is not None and r.harmed.benign_keys < MIN_BENIGN_KEYS:
            reasons.append(f"{r.harmed.benign_keys} benign keys < {MIN_BENIGN_KEYS}")
        for k in r.cohorts:  # every cohort on its own: a small heavy one is not averaged away
            who = k.name or "users"
            if k.utility < threshold:
                reasons.append(f"cohort {who}: utility {k.utility:.2f} < {threshold:.2f}")
            for other, value in k.mixed:
                if value < threshold:
                    reasons.append(f"cohort {who}: utility on {other} {value:.2f} < "
                                   f"{threshold:.2f}")
            if k.harmed.value > MAX_HARMED:
                reasons.append(f"cohort {who}: harmed {k.harmed.value:.1%} of "
                               f"{k.harmed.benign_keys} keys > {MAX_HARMED:.0%}")
            if k.harmed.benign_keys < MIN_BENIGN_KEYS:
                reasons.append(f"cohort {who}: {k.harmed.benign_keys} keys < "
                               f"{MIN_BENIGN_KEYS}")
        gated.append(replace(r, ranked=not reasons, unranked_reason="; ".join(reasons)))
    groups = [list(range(len(gated)))] if not by_task else [
        [i for i, r in enumerate(gated) if r.keys[c.TASK] == task]
        for task in dict.fromkeys(r.keys[c.TASK] for r in gated)]
    out: list[tuple[int, ProfileSummary]] = []
    for members in groups:
        def order(i: int) -> tuple[bool, bool, bool, float]:
            value = gated[i].resistance.value
            return (not gated[i].ranked, not gated[i].complete, math.isnan(value),
                    0.0 if math.isnan(value) else -value)

        members = sorted(members, key=order)
        top = [i for i in members if gated[i].ranked]
        labels = rank_labels([gated[i].resistance.low for i in top],
                             [gated[i].resistance.high for i in top],
                             [gated[i].resistance.value for i in top])
        for i, label in zip(top, labels, strict=True):
            out.append((i, replace(gated[i], rank=int(label.lstrip("=")), rank_label=label)))
        out += [(i, gated[i]) for i in members if not gated[i].ranked]
    return out


def build_board(cells: pd.DataFrame, curves: pd.DataFrame, per_task: pd.DataFrame,
                measured: pd.DataFrame, by_task: bool, scope: Scope, n_boot: int, seed: int,
                utility_threshold: float) -> Board:
    """The table of ``scope``'s rows: ``cells`` are the ok cells inside the ranking set,
    ``curves`` their seed means, ``per_task`` their per-task worst case
    (:func:`~extractbench.report.worst.worst_case`), ``measured`` every ok cell of the
    board's tasks (the utility, FPR and teacher score of a row come from all of them)."""
    keys = (c.PROFILE, c.TASK) if by_task else (c.PROFILE,)
    if not scope.rows:
        return Board(keys, (), (), ())
    wc = per_task if by_task or per_task.empty else combine_tasks(per_task)
    detected = c.FLAGGED_AT in measured and bool(measured[c.FLAGGED_AT].notna().any())
    rows = []
    for values, missing in scope.rows.items():
        budgets = scope.budgets.get(values[1] if by_task else "", ())
        group = wc[_mask(wc, keys, values)] if not wc.empty else wc
        rows.append(_summary(
            dict(zip(keys, values, strict=True)), group, budgets,
            cells[_mask(cells, keys, values)], measured[_mask(measured, keys, values)],
            per_task[_mask(per_task, keys, values)] if not per_task.empty else per_task,
            n_boot, seed, detected, missing))
    ranked = _gate(rows, utility_threshold, by_task)
    columns = dict.fromkeys(b for budgets in scope.budgets.values() for b in budgets)
    return Board(keys, tuple(r for _, r in ranked), tuple(i for i, _ in ranked),
                 tuple(columns))


def leaderboard_frame(
    frame: pd.DataFrame, by_task: bool = False, n_boot: int = 1000, seed: int = 0,
    utility_threshold: float = UTILITY_THRESHOLD, ranking: Ranking | None = None,
) -> pd.DataFrame:
    """The per-profile table (per profile and task with ``by_task``) of a
    :func:`~extractbench.report.frames.records_frame`, ranked profiles first: the table of
    :func:`~extractbench.report.analysis.analyze` (``ranking``: the scenario's, see
    :mod:`~extractbench.report.requirement`).

    Columns: rank (nullable int; empty when not ranked), rank_label (``=k`` for ties), profile,
    [task], ranked, unranked_reason, complete, missing, resistance(_low/_high), budget_max
    (the largest common budget), worst_attack, worst_student, auc(_low/_high),
    q50_queries(_low/_high), q50_usd(_low/_high), q50_status, teacher_score, n_cells, then
    when records carry them: utility(_low/_high), defended_score, fpr(_low/_high),
    benign_keys, flagged_at(_low/_high), flagged_frac, flagged_cells,
    transfer_at_flag(_low/_high), watermark_z(_low/_high), watermark_control_z(_low/_high);
    then per common budget ``wc_<label>`` with ``_low``, ``_high``, ``_attack``, ``_student``,
    ``_queries`` (the queries spent: the budget's x), ``_limit`` (its query limit),
    ``_short`` (share of seeds that could not spend the budget) and ``_unconverged`` (share of
    seeds whose student did not converge). ``q50_*_high`` is ``inf``
    when the bootstrap's upper bound never reaches 50%.
    """
    from extractbench.report.analysis import analyze

    analysis = analyze(frame, by_task=by_task, n_boot=n_boot, seed=seed,
                       utility_threshold=utility_threshold, ranking=ranking)
    if by_task and analysis.task_table is not None:
        return analysis.task_table
    return analysis.table
