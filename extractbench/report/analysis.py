"""The analysis layer: every figure of a leaderboard report, computed once from the cells.

:func:`analyze` takes a :func:`~extractbench.report.frames.records_frame` and returns an
:class:`Analysis`: the seed means, the worst case over attacks (per task, and per student
recipe for the plots), the overall and per-task :class:`~extractbench.report.board.Board` s of
typed :class:`~extractbench.report.rows.ProfileSummary` rows (worst case per budget with its CI
and attack, resistance, AUC, queries and dollars to 50% with bootstrap CIs, utility, FPR,
detection, ranks and ties) and the detection table's
:class:`~extractbench.report.rows.DetectionRow` s. The Markdown, HTML and CSV outputs and the
plots render from it and compute nothing of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from extractbench.report import columns as c
from extractbench.report.board import UTILITY_THRESHOLD, Board, build_board
from extractbench.report.defender import detection_rows
from extractbench.report.frames import seed_means
from extractbench.report.rows import DetectionRow
from extractbench.report.worst import worst_by_series, worst_case

__all__ = ["Analysis", "analyze", "common_tasks", "first_seen"]


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


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything a leaderboard report shows, computed once."""

    cells: pd.DataFrame
    """Every cell, failed ones included (:func:`~extractbench.report.frames.records_frame`)."""
    curves: pd.DataFrame
    """Seed means of the ok cells (:func:`~extractbench.report.frames.seed_means`)."""
    worst: pd.DataFrame
    """Worst case over attacks per (profile, task, budget), every task."""
    series_worst: pd.DataFrame
    """Worst case over attacks per (profile, student, task, budget): the plots' panel."""
    compared_tasks: list[str]
    """The tasks the overall table covers: those every profile was measured on."""
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


def analyze(frame: pd.DataFrame, by_task: bool | None = None, n_boot: int = 1000,
            seed: int = 0, utility_threshold: float = UTILITY_THRESHOLD) -> Analysis:
    """The analysis of a non-empty cells frame. ``by_task=None`` adds the per-task table when
    there are several tasks."""
    per_task = frame[c.TASK].nunique() > 1 if by_task is None else by_task
    curves = seed_means(frame, n_boot=n_boot, seed=seed)
    worst = worst_case(curves, by_task=True)
    compared = common_tasks(frame) or first_seen(frame[c.TASK])
    cells = frame[frame[c.TASK].isin(compared)]
    ok = frame[frame[c.STATUS] == c.OK]
    board = build_board(cells[cells[c.STATUS] == c.OK], curves[curves[c.TASK].isin(compared)],
                        worst[worst[c.TASK].isin(compared)], False, n_boot, seed,
                        utility_threshold)
    task_board = build_board(ok, curves, worst, True, n_boot, seed, utility_threshold) \
        if per_task else None
    return Analysis(
        cells=frame, curves=curves, worst=worst, series_worst=worst_by_series(curves),
        compared_tasks=compared, utility_threshold=utility_threshold, board=board,
        task_board=task_board, table=board.frame(),
        task_table=task_board.frame() if task_board is not None else None,
        detection=tuple(detection_rows(frame)), profile_order=first_seen(frame[c.PROFILE]))
