"""The analysis layer on its own: typed rows with values worked out by hand."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from extractbench.errors import ExtractbenchError
from extractbench.logs.records import CellRecord
from extractbench.logs.store import ResultsError
from extractbench.report import columns as c
from extractbench.report.analysis import Analysis, analyze
from extractbench.report.board import leaderboard_frame
from extractbench.report.frames import ResultsError as FramesResultsError
from extractbench.report.frames import records_frame
from extractbench.report.rows import ProfileSummary
from extractbench.report.write import ReportError
from extractbench.testing.records import cell_record


def run(records: list[CellRecord], **kwargs: object) -> Analysis:
    return analyze(records_frame(records), n_boot=50, **kwargs)  # type: ignore[arg-type]


def by_profile(analysis: Analysis) -> dict[str, ProfileSummary]:
    return {s.keys[c.PROFILE]: s for s in analysis.board.summaries}


def test_worst_case_is_the_max_over_attacks_with_its_attack_and_ci() -> None:
    analysis = run([cell_record("p", "a", 100, 0.3), cell_record("p", "b", 100, 0.6),
                    cell_record("p", "a", 1000, 0.8), cell_record("p", "b", 1000, 0.7)])
    (row,) = analysis.board.summaries
    points = {p.budget_label: p for p in row.curve}
    assert [p.budget_label for p in row.curve] == ["q100", "q1000"]  # ordered by budget
    assert (points["q100"].transfer.value, points["q100"].attack) == (0.6, "b")
    assert (points["q100"].transfer.low, points["q100"].transfer.high) == pytest.approx(
        (0.55, 0.65))
    assert (points["q1000"].transfer.value, points["q1000"].attack) == (0.8, "a")
    assert points["q1000"].x_queries == 1000
    # resistance at the largest budget: 1 - 0.8, CI 1 - high, 1 - low
    assert row.budget_max == "q1000" and row.worst_attack == "a"
    assert row.resistance.value == pytest.approx(0.2)
    assert (row.resistance.low, row.resistance.high) == pytest.approx((0.15, 0.25))
    # AUC over log10(queries) = 2..3: (0.6 + 0.8) / 2 over a log-range of 1
    assert row.auc.value == pytest.approx(0.7)
    # 0.6 >= 0.5 already at the smallest budget
    assert row.q50_status == "at_first_budget" and row.q50_queries.value == 100
    assert row.n_cells == 4 and row.teacher_score == pytest.approx(0.8)
    assert row.utility is None and row.fpr is None
    assert (row.rank, row.rank_label, row.ranked) == (1, "1", True)


def test_crossing_is_interpolated_in_log_budget() -> None:
    (row,) = run([cell_record("p", "a", 100, 0.2), cell_record("p", "a", 1000, 0.8)]
                 ).board.summaries
    # 0.5 is halfway from 0.2 to 0.8, so halfway from log10(100) = 2 to 3
    assert row.q50_status == "interpolated"
    assert row.q50_queries.value == pytest.approx(10 ** 2.5)
    assert row.auc.value == pytest.approx(0.5)


def test_ties_share_the_rank_of_the_group_leader() -> None:
    # resistance 0.9 [0.8, 1.0], 0.85 [0.75, 0.95], 0.5 [0.4, 0.6]
    analysis = run([cell_record(p, "a", 100, t, half_width=0.1)
                    for p, t in (("p3", 0.5), ("p1", 0.1), ("p2", 0.15))])
    assert [(s.keys[c.PROFILE], s.rank, s.rank_label) for s in analysis.board.summaries] == [
        ("p1", 1, "=1"), ("p2", 1, "=1"), ("p3", 3, "3")]
    assert list(analysis.table[c.PROFILE]) == ["p1", "p2", "p3"]
    assert list(analysis.table[c.RANK_LABEL]) == ["=1", "=1", "3"]


def test_utility_gate_and_fpr() -> None:
    analysis = run([
        cell_record("good", "a", 100, 0.4, utility=0.95, fpr=0.1, benign_keys=10,
                    benign_flagged_keys=1),
        cell_record("good", "a", 1000, 0.5, utility=0.95, fpr=0.0, benign_keys=10),
        cell_record("broken", "a", 100, 0.05, utility=0.5),
        cell_record("broken", "a", 1000, 0.05, utility=0.5),
    ])
    rows = by_profile(analysis)
    assert [s.keys[c.PROFILE] for s in analysis.board.summaries] == ["good", "broken"]
    good, broken = rows["good"], rows["broken"]
    assert good.utility is not None and good.utility.value == pytest.approx(0.95)
    assert good.fpr is not None and good.fpr.benign_keys == 20
    assert good.fpr.value == pytest.approx(1 / 20)  # pooled over the profile's cells
    assert (broken.ranked, broken.rank, broken.rank_label) == (False, None, "")
    assert broken.unranked_reason == "utility 0.50 < 0.90"
    assert broken.fpr is None


def test_students_and_tasks() -> None:
    records = [cell_record("p", "a", 100, 0.3), cell_record("p", "b", 100, 0.4),
               cell_record("p", "a", 100, 0.7, student="s2"),
               cell_record("p", "a", 100, 0.2, task="t2")]
    analysis = run(records)
    # per (profile, task, budget): the max over attacks and students
    worst = analysis.worst.set_index(c.TASK)
    assert (worst.loc["t", c.TRANSFER], worst.loc["t", c.ATTACK],
            worst.loc["t", c.STUDENT]) == (0.7, "a", "s2")
    # the plots' worst case: per student recipe
    series = {(r[c.STUDENT], r[c.TASK]): (r[c.ATTACK], r[c.TRANSFER])
              for _, r in analysis.series_worst.iterrows()}
    assert series == {("s", "t"): ("b", 0.4), ("s2", "t"): ("a", 0.7), ("s", "t2"): ("a", 0.2)}
    # overall: the mean over tasks of each task's worst case
    (overall,) = analysis.board.summaries
    assert overall.curve[0].transfer.value == pytest.approx((0.7 + 0.2) / 2)
    assert overall.curve[0].attack == "a"  # the same attack on both tasks
    assert overall.curve[0].student == "s, s2"
    assert analysis.task_board is not None
    assert [(s.keys[c.TASK], s.resistance.value) for s in analysis.task_board.summaries] == [
        ("t", pytest.approx(0.3)), ("t2", pytest.approx(0.8))]


def test_detection_rows_and_worst_attacker_detection() -> None:
    analysis = run([
        cell_record("p", "loud", 1000, 0.3, flagged_at=10),
        cell_record("p", "quiet", 1000, 0.9, seed=0, flagged_at=40),
        cell_record("p", "quiet", 1000, 0.7, seed=1),
        cell_record("p", "quiet", 100, 0.2),
    ])
    (row,) = analysis.board.summaries
    assert row.worst_attack == "quiet"
    assert row.detection is not None and row.detection.flagged_at is not None
    assert row.detection.flagged_at.value == 40  # the worst attacker's flag, not the loud one's
    assert math.isnan(row.detection.flagged_at.low)  # one flagged seed: no CI
    assert row.detection.flagged_frac == 0.5
    assert row.detection.flagged_cells == "2/4"
    table = {(d.profile, d.attack): d for d in analysis.detection}
    quiet = table[("p", "quiet")]
    assert quiet.budgets == ("q1000",) and (quiet.flagged, quiet.cells) == (1, 2)
    assert quiet.transfer == pytest.approx(0.8) and quiet.flagged_at == 40
    assert table[("p", "loud")].flagged == 1


def test_the_table_is_the_typed_rows() -> None:
    records = [cell_record(p, a, q, t) for p, a, q, t in (
        ("x", "a", 100, 0.2), ("x", "b", 1000, 0.6), ("y", "a", 100, 0.1),
        ("y", "a", 1000, 0.3))]
    analysis = run(records)
    frame = leaderboard_frame(records_frame(records), n_boot=50)
    assert list(frame.columns) == list(analysis.table.columns)
    assert frame.equals(analysis.table)
    for summary, (_, row) in zip(analysis.board.summaries, analysis.table.iterrows(),
                                 strict=True):
        assert row[c.wc("q1000", "_attack")] == summary.curve[-1].attack
        assert row[c.RESISTANCE] == summary.resistance.value


def test_errors_belong_to_the_hierarchy() -> None:
    assert FramesResultsError is ResultsError
    assert issubclass(ResultsError, ExtractbenchError) and issubclass(ResultsError, ValueError)
    assert issubclass(ReportError, ExtractbenchError) and issubclass(ReportError, ValueError)


def test_report_never_imports_torch() -> None:
    code = ("import sys, extractbench.report.write, extractbench.report.plots, "
            "extractbench.report.leaderboard, extractbench.logs.store, "
            "extractbench.testing.records; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
