"""Leaderboard logic on synthetic records: worst case, ranks, 50% crossing, outputs."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from extractbench.logs.records import CellRecord, Interval
from extractbench.report.frames import records_frame
from extractbench.report.leaderboard import (
    common_tasks,
    crossing,
    leaderboard_frame,
    log_auc,
    rank_labels,
    write_leaderboard,
)
from extractbench.testing.records import cell_record as cell
from extractbench.testing.records import scored_record as scored


def table(records: list[CellRecord], **kwargs: object) -> pd.DataFrame:
    return leaderboard_frame(records_frame(records), n_boot=100, **kwargs)  # type: ignore[arg-type]


def test_worst_case_is_the_max_over_attacks_per_budget() -> None:
    records = [
        cell("p", "a", 100, 0.3), cell("p", "b", 100, 0.6), cell("p", "c", 100, 0.4),
        cell("p", "a", 1000, 0.8), cell("p", "b", 1000, 0.7), cell("p", "c", 1000, 0.1),
    ]
    row = table(records).iloc[0]
    assert (row["wc_q100"], row["wc_q100_attack"]) == (0.6, "b")
    assert (row["wc_q100_low"], row["wc_q100_high"]) == pytest.approx((0.55, 0.65))
    assert (row["wc_q1000"], row["wc_q1000_attack"]) == (0.8, "a")
    assert row["resistance"] == pytest.approx(1 - 0.8)
    assert (row["resistance_low"], row["resistance_high"]) == pytest.approx((0.15, 0.25))
    assert row["worst_attack"] == "a" and row["budget_max"] == "q1000"
    assert row["teacher_score"] == pytest.approx(0.8)


def test_seed_mean_before_max() -> None:
    """An attack that is lucky on one seed does not beat one that is better on average."""
    records = [cell("p", "lucky", 100, 0.9, seed=0), cell("p", "lucky", 100, 0.1, seed=1),
               cell("p", "steady", 100, 0.6, seed=0), cell("p", "steady", 100, 0.6, seed=1)]
    row = table(records).iloc[0]
    assert (row["wc_q100"], row["wc_q100_attack"]) == (pytest.approx(0.6), "steady")


def test_transfer_below_base_is_negative_not_clipped() -> None:
    row = table([cell("p", "a", 100, -0.25)]).iloc[0]
    assert row["wc_q100"] == pytest.approx(-0.25)
    assert row["resistance"] == pytest.approx(1.25)


def test_ranks_tie_when_cis_overlap() -> None:
    # resistance = 1 - transfer, CI ± 0.1: 0.9 and 0.85 overlap, 0.5 does not reach 0.8
    transfers = {"p1": 0.1, "p2": 0.15, "p3": 0.5, "p4": 0.55, "p5": 0.95}
    records = [cell(p, "a", 100, t, half_width=0.1) for p, t in transfers.items()]
    result = table(records)
    assert list(result["profile"]) == ["p1", "p2", "p3", "p4", "p5"]
    assert list(result["rank_label"]) == ["=1", "=1", "=3", "=3", "5"]
    assert list(result["rank"]) == [1, 1, 3, 3, 5]


def test_rank_labels_do_not_chain_past_the_group_leader() -> None:
    # b overlaps a, c overlaps b but not a: c starts a new rank
    assert rank_labels([0.8, 0.7, 0.6], [1.0, 0.85, 0.75]) == ["=1", "=1", "3"]
    assert rank_labels([0.8, 0.5], [1.0, 0.6]) == ["1", "2"]


def test_crossing_interpolates_in_log_budget() -> None:
    xs, ys, usd = [100, 1000, 10000], [0.1, 0.3, 0.9], [0.5, 5.0, 50.0]
    status, (queries, dollars) = crossing(xs, ys, 0.5, others=[usd])
    assert status == "interpolated"
    assert queries == pytest.approx(10 ** np.interp(0.5, [0.3, 0.9], np.log10([1000, 10000])))
    assert dollars == pytest.approx(10 ** np.interp(0.5, [0.3, 0.9], np.log10([5.0, 50.0])))


def test_crossing_first_upward_crossing_and_edges() -> None:
    status, (queries,) = crossing([10, 100, 1000, 10000], [0.2, 0.6, 0.3, 0.9])
    assert status == "interpolated"
    assert queries == pytest.approx(10 ** np.interp(0.5, [0.2, 0.6], [1, 2]))
    assert crossing([100, 1000], [0.55, 0.9]) == ("at_first_budget", [100.0])
    status, values = crossing([100, 1000], [0.1, 0.49])
    assert status == "not_reached" and math.isnan(values[0])


def test_leaderboard_q50_and_auc_from_records() -> None:
    curve = {100: 0.1, 1000: 0.3, 10000: 0.9}
    costs = {100: 0.5, 1000: 5.0, 10000: 50.0}
    records = [cell("leaky", "a", q, t, cost=costs[q]) for q, t in curve.items()]
    records += [cell("tight", "a", q, t / 4) for q, t in curve.items()]
    result = table(records).set_index("profile")
    leaky, tight = result.loc["leaky"], result.loc["tight"]
    logq = np.log10(list(curve))
    assert leaky["q50_queries"] == pytest.approx(10 ** np.interp(0.5, [0.3, 0.9], logq[1:]))
    assert leaky["q50_usd"] == pytest.approx(10 ** np.interp(0.5, [0.3, 0.9],
                                                                  np.log10([5.0, 50.0])))
    assert leaky["q50_status"] == "interpolated"
    assert tight["q50_status"] == "not_reached" and math.isnan(tight["q50_queries"])
    expected_auc = np.trapezoid(list(curve.values()), logq) / (logq[-1] - logq[0])
    assert leaky["auc"] == pytest.approx(expected_auc)
    assert log_auc([100], [0.4]) == pytest.approx(0.4)


def test_token_budgets_use_queries_spent() -> None:
    records = [cell("p", "a", q, t, budget={"tokens": 25.0 * q})
               for q, t in ((200, 0.2), (2000, 0.8))]
    row = table(records).iloc[0]
    assert row["wc_q200_queries"] == 200 and row["wc_q2000_queries"] == 2000
    assert row["q50_queries"] == pytest.approx(10 ** np.interp(0.5, [0.2, 0.8],
                                                               np.log10([200, 2000])))


def test_optional_columns_only_when_recorded() -> None:
    frame = records_frame([cell("p", "a", 100, 0.5)])
    assert "utility" not in leaderboard_frame(frame, n_boot=50)
    extended = frame.assign(utility=0.9, defended_score=0.72, fpr=0.01, flagged_at=40)
    row = leaderboard_frame(extended, n_boot=50).iloc[0]
    assert (row["utility"], row["defended_score"], row["fpr"]) == pytest.approx((0.9, 0.72, 0.01))
    assert row["flagged_at"] == 40 and row["flagged_frac"] == 1.0


def test_by_task_rows() -> None:
    records = [cell("p", "a", 100, 0.2, task="t1"), cell("p", "b", 100, 0.6, task="t2")]
    per_task = table(records, by_task=True)
    assert sorted(zip(per_task["task"], per_task["wc_q100"], strict=True)) == [
        ("t1", 0.2), ("t2", 0.6)]
    overall = table(records).iloc[0]
    assert overall["wc_q100"] == pytest.approx(0.4)
    assert overall["wc_q100_attack"] == "t1:a, t2:b"


def test_profiles_are_compared_on_the_tasks_they_all_have(tmp_path: Path) -> None:
    # the open endpoint measured on two tasks, the guarded one on one: ranking them on an
    # average over different task mixes would rank the mix, not the defense
    records = [cell("open", "a", 100, 0.9, task="easy"), cell("open", "a", 100, 0.1, task="hard"),
               cell("guarded", "a", 100, 0.5, task="easy"),
               cell("guarded", "a", 100, None, task="hard", status="error", error="boom")]
    assert common_tasks(records_frame(records)) == ["easy"]
    write_leaderboard(records, tmp_path, n_boot=100, plots=False, html=False)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "measured on: easy." in md
    overall = md.split("## Profiles by task")[0]
    # on "easy" the guarded profile resists better (transfer 0.5 vs 0.9); averaged over the
    # open profile's two tasks (0.5) the two would look the same
    assert "| 1 | guarded | 0.50" in overall and "| 2 | open | 0.10" in overall


def test_plots_of_an_earlier_board_are_replaced_not_left_behind(tmp_path: Path) -> None:
    stale = tmp_path / "transfer_vs_budget-oldtask.png"
    stale.write_bytes(b"old")
    keep = tmp_path / "notes.png"
    keep.write_bytes(b"mine")
    paths = write_leaderboard([cell("p", "a", 100, 0.5), cell("p", "a", 1000, 0.9)], tmp_path,
                              n_boot=50)
    assert not stale.exists() and keep.exists()
    assert (tmp_path / "transfer_vs_budget.png") in paths


def test_write_leaderboard_outputs(tmp_path: Path) -> None:
    records = [cell(p, a, q, t * (0.5 if p == "guarded" else 1.0), seed=s)
               for p in ("open", "guarded") for a, t in (("a", 0.4), ("b", 0.7))
               for q in (100, 1000) for s in (0, 1)]
    records.append(cell("open", "b", 10000, None, status="error",
                        error="CUDA OOM while training\nTraceback ..."))
    records.append(cell("guarded", "a", 10000, None, status="skipped", error="budget too small"))
    paths = write_leaderboard(records, tmp_path / "out", n_boot=100)
    names = {p.name for p in paths}
    assert {"leaderboard.md", "leaderboard.csv", "cells.csv",
            "transfer_vs_budget.png", "transfer_vs_cost.svg"} <= names
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)

    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert list(board["profile"]) == ["guarded", "open"]
    assert board["resistance"].dtype == float
    assert board["n_cells"].tolist() == [8, 8]  # failed cells are not counted
    assert "wc_q10000" not in board

    cells = pd.read_csv(tmp_path / "out" / "cells.csv")
    assert len(cells) == 18
    assert set(cells["status"]) == {"ok", "error", "skipped"}

    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "`run-x`" in md and "`unit` (sha256 `eeeeeeeeeeee`)" in md
    assert "git `fedcba987654`" in md
    assert "0.35 [0.30, 0.40] (b)" in md  # guarded, q1000: worst case is attack b
    assert "## Skipped and failed cells" in md
    assert "`open/t/b/q10000/s/0` — error: CUDA OOM while training" in md
    assert "Traceback" not in md
    assert "`guarded/t/a/q10000/s/0` — skipped: budget too small" in md


# ---------------------------------------------------------------- utility gate, CIs, defense


def test_utility_gate_ranks_only_profiles_that_keep_the_service_useful() -> None:
    records = [scored("broken", "a", 1000, 0.05, utility=0.5),
               scored("good", "a", 1000, 0.4, utility=0.95),
               scored("open", "a", 1000, 0.9, utility=1.0)]
    result = table(records)
    assert list(result["profile"]) == ["good", "open", "broken"]
    assert list(result["ranked"]) == [True, True, False]
    assert list(result["rank_label"]) == ["1", "2", ""]
    assert pd.isna(result["rank"].iloc[2])
    assert result["unranked_reason"].iloc[2] == "utility 0.50 < 0.90"
    relaxed = table(records, utility_threshold=0.4)
    assert list(relaxed["profile"]) == ["broken", "good", "open"]
    assert relaxed["ranked"].all()


def test_without_any_utility_everyone_is_ranked_but_a_missing_one_is_not() -> None:
    plain = table([scored("a", "x", 100, 0.2), scored("b", "x", 100, 0.7)])
    assert plain["ranked"].all() and list(plain["rank_label"]) == ["1", "2"]
    mixed = table([scored("a", "x", 100, 0.2), scored("b", "x", 100, 0.7, utility=1.0)])
    assert list(mixed["profile"]) == ["b", "a"]
    assert mixed.set_index("profile").loc["a", "unranked_reason"] == "utility not measured"


def test_utility_interval_over_items() -> None:
    result = table([scored("open", "a", 100, 0.5, utility=1.0, defended_score=1.0),
                    scored("lossy", "a", 100, 0.5, utility=0.8, defended_score=0.8)])
    rows = result.set_index("profile")
    assert (rows.loc["open", "utility_low"], rows.loc["open", "utility_high"]) == (1.0, 1.0)
    low, high = rows.loc["lossy", "utility_low"], rows.loc["lossy", "utility_high"]
    assert 0.65 < low < 0.8 < high <= 1.0
    assert rows.loc["lossy", "defended_score"] == pytest.approx(0.8)


def test_fpr_pools_benign_keys_with_a_wilson_interval() -> None:
    records = [scored("p", "a", q, 0.3, fpr=0.1 if q == 100 else 0.0, benign_keys=10,
                      benign_flagged_keys=1 if q == 100 else 0) for q in (100, 1000)]
    row = table(records).iloc[0]
    assert row["fpr"] == pytest.approx(1 / 20) and row["benign_keys"] == 20
    assert 0 < row["fpr_low"] < 0.05 < row["fpr_high"] < 0.3
    clean = table([scored("p", "a", 100, 0.3, fpr=0.0, benign_keys=100)]).iloc[0]
    assert clean["fpr"] == 0 and clean["fpr_high"] == pytest.approx(0.037, abs=1e-3)


def test_detection_is_that_of_the_worst_attacker_at_the_largest_budget() -> None:
    flag = Interval(value=0.2, low=0.1, high=0.3)
    records = [scored("p", "loud", 1000, 0.3, flagged_at=10),
               scored("p", "quiet", 1000, 0.9, flagged_at=50, transfer_at_flag=flag,
                      watermark_z=6.0, watermark_control_z=0.4),
               scored("p", "quiet", 100, 0.2)]
    row = table(records).iloc[0]
    assert row["worst_attack"] == "quiet"
    assert row["flagged_at"] == 50 and row["flagged_frac"] == 1.0
    assert math.isnan(row["flagged_at_low"])  # one seed: no interval rather than [50, 50]
    assert row["flagged_cells"] == "2/3"
    assert (row["transfer_at_flag"], row["transfer_at_flag_low"]) == (0.2, 0.1)
    assert (row["watermark_z"], row["watermark_control_z"]) == (6.0, 0.4)
    seeds = [scored("p", "a", 1000, 0.5, seed=s, flagged_at=f)
             for s, f in enumerate((40, 50, 60, None))]
    row = table(seeds).iloc[0]
    assert row["flagged_at"] == pytest.approx(50) and row["flagged_frac"] == 0.75
    assert row["flagged_at_low"] < 50 < row["flagged_at_high"]


def test_auc_and_crossing_intervals_come_from_one_bootstrap_of_the_curve() -> None:
    records = [scored("p", a, q, t, n=200) for a, shift in (("a", 0.0), ("b", -0.1))
               for q, t in ((100, 0.1 + shift), (1000, 0.45 + shift), (10000, 0.9 + shift))]
    row = table(records).iloc[0]
    assert row["auc_low"] < row["auc"] < row["auc_high"]
    assert row["q50_queries_low"] < row["q50_queries"] < row["q50_queries_high"] < 10000
    again = table(records).iloc[0]
    assert (again["auc_low"], again["q50_queries_high"]) == (row["auc_low"],
                                                            row["q50_queries_high"])
    # a curve that only just reaches 50% on few items: the upper bound is "not reached"
    barely = table([scored("p", "a", 100, 0.1, n=30), scored("p", "a", 1000, 0.53, n=30)])
    row = barely.iloc[0]
    assert row["q50_status"] == "interpolated" and row["q50_queries_high"] == math.inf
    never = table([scored("p", "a", 100, 0.1), scored("p", "a", 1000, 0.3)]).iloc[0]
    assert never["q50_status"] == "not_reached" and never["q50_queries_low"] == math.inf


def test_leaderboard_report_has_html_gate_sections_and_new_plots(tmp_path: Path) -> None:
    records = []
    for profile, leak, utility, flag in (("open", 1.0, 1.0, None), ("guard", 0.6, 0.97, 300),
                                         ("broken", 0.2, 0.4, None)):
        for q, t in ((100, 0.2), (1000, 0.6), (3000, 0.9)):
            records.append(scored(profile, "a", q, t * leak, utility=utility,
                                  flagged_at=flag if flag and q > flag else None, fpr=0.0,
                                  benign_keys=10, cost=q * 1e-4))
    paths = write_leaderboard(records, tmp_path, n_boot=100)
    names = {p.name for p in paths}
    assert paths[0].name == "leaderboard.md"
    assert {"leaderboard.html", "resistance_vs_utility.png", "resistance_vs_utility.svg",
            "detection_timeline.png", "detection_timeline.svg"} <= names
    md = (tmp_path / "leaderboard.md").read_text()
    assert "## Ranked profiles (utility ≥ 0.90)" in md
    assert "## Not ranked: utility below 0.90, not measured, or benign keys harmed" in md
    assert "| – | broken | utility 0.40 < 0.90 |" in md
    assert "above the largest budget" in md and "| $ to 50% |" in md
    assert "## Detection and attribution" in md and "| guard | a | q3000 |" in md
    open_row = next(line for line in md.splitlines() if "| open |" in line)
    assert "| never |" in open_row  # others were flagged: open was measured, never flagged
    page = (tmp_path / "leaderboard.html").read_text()
    assert page.count('<img src="data:image/svg+xml;base64,') == 4
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert list(board["profile"]) == ["guard", "open", "broken"]
    assert list(board["ranked"]) == [True, True, False]


def test_runs_merge_through_the_command_line(tmp_path: Path) -> None:
    from extractbench.cli.main import main

    for name, profile in (("vendor", "remote-x"), ("reference", "local")):
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        lines = [scored(profile, "a", q, t).model_dump_json() for q, t in ((100, .2), (1000, .7))]
        (run / "records.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "board"
    assert main(["leaderboard", str(tmp_path / "runs" / "vendor"),
                 str(tmp_path / "runs" / "reference"), "--out", str(out)]) == 0
    assert set(pd.read_csv(out / "leaderboard.csv")["profile"]) == {"remote-x", "local"}
    assert (out / "leaderboard.html").exists()
    assert "$ to 50%" not in (out / "leaderboard.md").read_text()  # every cost was $0


def test_per_task_ranks_restart_in_each_task() -> None:
    records = [scored(p, "a", 100, t, task=task) for task, curve in
               (("t1", {"x": 0.1, "y": 0.8}), ("t2", {"x": 0.9, "y": 0.2}))
               for p, t in curve.items()]
    result = table(records, by_task=True)
    assert list(zip(result["task"], result["profile"], result["rank_label"], strict=True)) == [
        ("t1", "x", "1"), ("t1", "y", "2"), ("t2", "y", "1"), ("t2", "x", "2")]
