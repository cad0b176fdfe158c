"""Leaderboard logic on synthetic records: worst case, ranks, 50% crossing, outputs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from extractbench.leaderboard import (
    crossing,
    leaderboard_frame,
    log_auc,
    rank_labels,
    write_leaderboard,
)
from extractbench.records import CellRecord, Interval, Provenance
from extractbench.results import records_frame

PROVENANCE = Provenance(
    scenario_name="unit", scenario_path="scenarios/unit.yaml", scenario_hash="e" * 64,
    git_sha="fedcba9876543210", extractbench_version="0.1.0", package_versions={},
    python="3.11", platform="test", torch_threads=1,
)


def cell(profile: str, attack: str, queries: int, transfer: float | None, *, task: str = "t",
         seed: int = 0, half_width: float = 0.05, cost: float = 0.0,
         budget: dict[str, float] | None = None, **fields: object) -> CellRecord:
    """A synthetic cell; teacher 0.8, base 0.2, student set so the transfer is as given."""
    values: dict[str, object] = dict(
        run_id="run-x", cell_id=f"{profile}/{task}/{attack}/q{queries}/s/{seed}", status="ok",
        endpoint="ref", profile=profile, model="m", task=task, attack=attack, student="s",
        budget=budget or {"queries": queries}, budget_label=f"q{queries}", seed=seed,
        queries=queries, input_tokens=20 * queries, output_tokens=5 * queries, cost_usd=cost,
        wall_s=1.5, provenance=PROVENANCE,
    )
    if transfer is not None:
        values.update(
            teacher_score=0.8, base_score=0.2, student_score=0.2 + 0.6 * transfer,
            fidelity=0.7,
            transfer=Interval(value=transfer, low=transfer - half_width,
                              high=transfer + half_width))
    values.update(fields)
    return CellRecord.model_validate(values)


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
