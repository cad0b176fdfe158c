"""The analysis layer: every figure of a leaderboard report, computed once from the cells.

:func:`analyze` takes a :func:`~extractbench.report.frames.records_frame` and returns an
:class:`Analysis`: the seed means, the worst case over attacks (per task, and per student
recipe for the plots), the ranking set of each task
(:mod:`~extractbench.report.requirement`), the overall and per-task
:class:`~extractbench.report.board.Board` s of typed
:class:`~extractbench.report.rows.ProfileSummary` rows (worst case over the ranking set at each
common budget with its CI and attack, resistance, AUC, queries and dollars to 50% with
bootstrap CIs, utility, FPR, detection, completeness, ranks and ties) and the detection
table's :class:`~extractbench.report.rows.DetectionRow` s. The Markdown, HTML and CSV outputs
and the plots render from it and compute nothing of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from extractbench.report import columns as c
from extractbench.report.board import UTILITY_THRESHOLD, Board, Scope, build_board
from extractbench.report.defender import detection_rows
from extractbench.report.frames import seed_means
from extractbench.report.requirement import RankingSet, missing, outside, ranking_sets, restrict
from extractbench.report.rows import DetectionRow
from extractbench.report.worst import budget_order, worst_by_series, worst_case

if TYPE_CHECKING:
    from extractbench.config.scenario import Ranking

__all__ = ["Analysis", "analyze", "common_tasks", "compared_tasks", "first_seen"]


def first_seen(values: Iterable[object]) -> list[str]:
    """The distinct values as strings, in order of first appearance."""
    return list(dict.fromkeys(str(v) for v in values))


def common_tasks(frame: pd.DataFrame) -> list[str]:
    """The tasks every profile has a measured (``ok``) cell on, in first-seen order. The
    overall table compares profiles on these only: averaging one profile over four task
    families and another over one would rank the task mix, not the defense."""
    ok = frame[frame[c.STATUS] == c.OK] if c.STATUS in frame else frame
    if ok.empty:
        return []
    per_profile = [set(g[c.TASK]) for _, g in ok.groupby(c.PROFILE, sort=False)]
    shared = set.intersection(*per_profile)
    return [t for t in first_seen(ok[c.TASK]) if t in shared]


def compared_tasks(frame: pd.DataFrame, ranking: Ranking | None = None) -> list[str]:
    """The tasks the overall table ranks on: the declared ``ranking.tasks`` that were
    measured, in first-seen order; otherwise those every profile was measured on
    (:func:`common_tasks`), or every task when they share none."""
    seen = first_seen(frame[c.TASK])
    if ranking is not None and ranking.tasks is not None:
        return [t for t in seen if t in ranking.tasks]
    return common_tasks(frame) or seen


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything a leaderboard report shows, computed once."""

    cells: pd.DataFrame
    """Every cell, failed ones included (:func:`~extractbench.report.frames.records_frame`)."""
    curves: pd.DataFrame
    """Seed means of every ok cell (:func:`~extractbench.report.frames.seed_means`)."""
    worst: pd.DataFrame
    """Worst case over every measured attack per (profile, task, budget), every task."""
    series_worst: pd.DataFrame
    """Worst case over attacks per (profile, student, task, budget): the plots' panel."""
    compared_tasks: list[str]
    """The tasks the overall table covers (:func:`compared_tasks`)."""
    ranking_sets: dict[str, RankingSet]
    """Per task, what a profile must be measured on to be ranked."""
    compared_budgets: tuple[str, ...]
    """The overall table's common budgets: in the ranking set of every compared task."""
    outside: tuple[tuple[str, str], ...]
    """``(task, line)``: what a profile was measured on outside the task's ranking set, in
    words; in the cells table and the plots, never in a board's figures."""
    utility_threshold: float
    """Minimum utility for a profile to be ranked."""
    board: Board
    """The overall table, on :attr:`compared_tasks`."""
    task_board: Board | None
    """The per-(profile, task) table, when asked for."""
    table: pd.DataFrame
    """:attr:`board` as a DataFrame."""
    task_table: pd.DataFrame | None
    """:attr:`task_board` as a DataFrame."""
    detection: tuple[DetectionRow, ...]
    """Per (profile, attack) at the largest budget, when anything was flagged or
    watermarked."""
    profile_order: list[str]
    """Profiles in order of first appearance: each keeps its plot style in every figure."""

    @property
    def any_ok(self) -> bool:
        """Some cell was measured."""
        return bool((self.cells[c.STATUS] == c.OK).any())


def _overall_scope(ok: pd.DataFrame, tasks: list[str], sets: dict[str, RankingSet],
                   labels: list[str], unmeasured: str = "") -> Scope:
    """The overall board: a row per profile (measured on any task: one measured only outside
    the compared tasks is listed as missing them), complete when complete on each compared
    task; the common budgets are those of every task's ranking set. With no compared task,
    every row misses ``unmeasured`` (what the ranking asks for that nothing was measured on):
    a profile measured on nothing comparable is never ranked."""
    rows: dict[tuple[str, ...], str] = {}
    for profile in first_seen(ok[c.PROFILE]):
        parts = [] if tasks else [unmeasured or "nothing to compare on"]
        for task in tasks:
            gap = missing(ok[(ok[c.PROFILE] == profile) & (ok[c.TASK] == task)], sets[task])
            if gap:
                parts.append(f"{task}: {gap}" if len(tasks) > 1 else gap)
        rows[(profile,)] = "; ".join(parts)
    shared = set.intersection(*(set(sets[t].budgets) for t in tasks)) if tasks else set()
    return Scope(rows, {"": tuple(b for b in labels if b in shared)})


def _task_scope(ok: pd.DataFrame, sets: dict[str, RankingSet], labels: list[str]) -> Scope:
    rows: dict[tuple[str, ...], str] = {
        (str(p), str(t)): missing(g, sets[str(t)])
        for (p, t), g in ok.groupby([c.PROFILE, c.TASK], sort=False)}
    order = {b: i for i, b in enumerate(labels)}
    return Scope(rows, {t: tuple(sorted(s.budgets, key=lambda b: order.get(b, len(order))))
                        for t, s in sets.items()})


def analyze(frame: pd.DataFrame, by_task: bool | None = None, n_boot: int = 1000,
            seed: int = 0, utility_threshold: float = UTILITY_THRESHOLD,
            ranking: Ranking | None = None) -> Analysis:
    """The analysis of a non-empty cells frame. ``by_task=None`` adds the per-task table when
    there are several tasks. ``ranking`` is the scenario's ``ranking:`` (default: what the
    undefended profile of each task was measured on; see
    :mod:`~extractbench.report.requirement`)."""
    per_task = frame[c.TASK].nunique() > 1 if by_task is None else by_task
    curves = seed_means(frame, n_boot=n_boot, seed=seed)
    sets = ranking_sets(frame, ranking)
    inside = restrict(frame, sets)
    inside_curves = seed_means(inside, n_boot=n_boot, seed=seed)
    inside_worst = worst_case(inside_curves, by_task=True)
    compared = compared_tasks(frame, ranking)
    ok = frame[frame[c.STATUS] == c.OK]
    labels = budget_order(ok)
    unmeasured = (f"not measured on {', '.join(ranking.tasks)}, the task(s) the scenario's "
                  "`ranking:` ranks on" if ranking is not None and ranking.tasks else "")
    overall = _overall_scope(ok, compared, sets, labels, unmeasured)

    def on(part: pd.DataFrame) -> pd.DataFrame:
        return part[part[c.TASK].isin(compared)] if len(part) else part

    board = build_board(on(inside), on(inside_curves), on(inside_worst), on(ok), False,
                        overall, n_boot, seed, utility_threshold)
    task_board = build_board(inside, inside_curves, inside_worst, ok, True,
                             _task_scope(ok[ok[c.TASK].isin(list(sets))], sets, labels), n_boot,
                             seed, utility_threshold) \
        if per_task else None
    return Analysis(
        cells=frame, curves=curves, worst=worst_case(curves, by_task=True),
        series_worst=worst_by_series(curves), compared_tasks=compared, ranking_sets=sets,
        compared_budgets=overall.budgets[""], outside=tuple(outside(frame, sets)),
        utility_threshold=utility_threshold, board=board, task_board=task_board,
        table=board.frame(), task_table=task_board.frame() if task_board is not None else None,
        detection=tuple(detection_rows(frame)), profile_order=first_seen(frame[c.PROFILE]))
