"""Plots render to non-empty PNG and SVG files with readable labels."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import pandas as pd

from extractbench.logs.records import CellRecord, Interval
from extractbench.report.frames import records_frame, seed_means
from extractbench.report.plot_style import series_styles
from extractbench.report.plots import (
    pareto_front,
    plot_detection_calibration,
    plot_detection_timeline,
    plot_resistance_vs_utility,
    plot_transfer_vs_budget,
    plot_transfer_vs_cost,
    set_style,
)
from extractbench.testing.records import cell_record

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cell(profile: str, task: str, attack: str, queries: int, transfer: float,
         cost: float = 0.0, budget: dict[str, float] | None = None) -> CellRecord:
    return cell_record(profile, attack, queries, transfer, task=task, teacher=0.9, base=0.1,
                       half_width=0.08, cost=cost, budget=budget, tokens_per_query=(30, 4),
                       run_id="r")


def grid(tasks: tuple[str, ...] = ("arith",), attacks: tuple[str, ...] = ("random",),
         cost: float = 0.0) -> list[CellRecord]:
    return [cell(p, t, a, q, k * (0.2 + 0.2 * i), cost=cost * q)
            for t in tasks for p, k in (("open", 1.0), ("guarded", 0.5))
            for a in attacks for i, q in enumerate((100, 1000, 10000))]


def _assert_images(paths: list[Path], stems: set[str]) -> None:
    assert {p.stem for p in paths} == stems
    assert {p.suffix for p in paths} == {".png", ".svg"}
    for path in paths:
        data = path.read_bytes()
        assert len(data) > 1000
        if path.suffix == ".png":
            assert data.startswith(PNG_MAGIC)
        else:
            assert b"<svg" in data[:2000]


def test_transfer_vs_budget_one_figure_per_task(tmp_path: Path) -> None:
    paths = plot_transfer_vs_budget(records_frame(grid(("arith", "copy"), ("random", "active"))),
                                    tmp_path / "tvb")
    _assert_images(paths, {"tvb-arith", "tvb-copy"})
    svg = (tmp_path / "tvb-arith.svg").read_text()
    assert "queries spent (log scale)" in svg and "task: arith" in svg
    assert "worst case" in svg and "attack: active" in svg


def test_token_budgets_plot_queries_spent(tmp_path: Path) -> None:
    records = [cell("p", "t", "a", q, 0.1 * i, budget={"tokens": 34.0 * q})
               for i, q in enumerate((100, 1000))]
    paths = plot_transfer_vs_budget(records_frame(records), tmp_path / "tok")
    _assert_images(paths, {"tok"})
    assert "queries spent" in (tmp_path / "tok.svg").read_text()


def test_transfer_vs_cost_falls_back_to_tokens(tmp_path: Path) -> None:
    free = plot_transfer_vs_cost(seed_means(records_frame(grid())), tmp_path / "free")
    _assert_images(free, {"free"})
    assert "all costs $0" in (tmp_path / "free.svg").read_text()
    paid = plot_transfer_vs_cost(records_frame(grid(cost=0.002)), tmp_path / "paid")
    _assert_images(paid, {"paid"})
    assert "cost spent (USD" in (tmp_path / "paid.svg").read_text()


def test_plots_leave_global_style_alone(tmp_path: Path) -> None:
    before = mpl.rcParams["font.size"]
    plot_transfer_vs_budget(records_frame(grid()), tmp_path / "x")
    assert mpl.rcParams["font.size"] == before
    with mpl.rc_context():
        set_style()
        assert mpl.rcParams["svg.fonttype"] == "none"


def test_pareto_front() -> None:
    utility = [1.0, 0.95, 0.6, 0.9, float("nan")]
    resistance = [0.1, 0.3, 0.8, 0.2, 0.99]
    # (0.9, 0.2) is dominated by (0.95, 0.3); nan is never on the front
    assert pareto_front(utility, resistance) == [True, True, True, False, False]
    assert pareto_front([0.5, 0.5], [0.5, 0.5]) == [True, True]  # ties dominate nothing


def test_resistance_vs_utility(tmp_path: Path) -> None:
    table = pd.DataFrame({
        "profile": ["open", "guard", "broken", "unmeasured"],
        "utility": [1.0, 0.95, 0.5, None], "utility_low": [1.0, 0.9, 0.4, None],
        "utility_high": [1.0, 0.99, 0.6, None],
        "resistance": [0.05, 0.3, 0.8, 0.5], "resistance_low": [0.0, 0.2, 0.7, 0.4],
        "resistance_high": [0.1, 0.4, 0.9, 0.6], "budget_max": ["q1000"] * 4,
    })
    paths = plot_resistance_vs_utility(table, tmp_path / "rvu", utility_threshold=0.9)
    _assert_images(paths, {"rvu"})
    svg = (tmp_path / "rvu.svg").read_text()
    for text in ("open", "guard", "broken", "Pareto front", "ranking threshold",
                 "not shown (utility not measured): unmeasured",
                 "largest common budget: q1000",
                 "utility ≥ 0.9"):
        assert text in svg, text
    none = table.assign(utility=None)
    assert plot_resistance_vs_utility(none, tmp_path / "none") == []


def flagged_grid() -> list[CellRecord]:
    out = []
    for profile, flag in (("open", None), ("detector", 150)):
        for i, q in enumerate((100, 1000)):
            record = cell(profile, "t", "random", q, 0.3 + 0.4 * i)
            if flag is not None and q > flag:
                record = record.model_copy(update={
                    "flagged_at": flag,
                    "transfer_at_flag": Interval(value=0.35, low=0.3, high=0.4)})
            out.append(record)
    return out


def test_detection_timeline(tmp_path: Path) -> None:
    assert plot_detection_timeline(records_frame(grid()), tmp_path / "none") == []
    paths = plot_detection_timeline(records_frame(flagged_grid()), tmp_path / "dt")
    _assert_images(paths, {"dt"})
    svg = (tmp_path / "dt.svg").read_text()
    for text in ("Detection timeline", "attacker queries sent", "open (never flagged)",
                 ">150<", "pre-flag harvest"):
        assert text in svg, text
    assert "detector (never flagged)" not in svg


def test_a_profile_keeps_its_style_across_figures() -> None:
    curves = seed_means(records_frame(grid()))
    series = curves.assign(series=curves["profile"])
    order = ["guarded", "open"]
    full = series_styles(series, order)
    only_open = series_styles(series[series["profile"] == "open"], order)
    assert only_open["open"][1:] == full["open"][1:]  # colour, marker, line style
    assert full["open"][1] != full["guarded"][1]


def test_detection_calibration(tmp_path: Path) -> None:
    figures = {"threshold_1": 3.0, "tpr_1": 0.25, "fpr_1": 0.0, "threshold_5": 2.0,
               "tpr_5": 0.75, "fpr_5": 0.05, "auc": 0.9, "auc_tested": 0.8,
               "benign_tested": 8, "queries_5": 120}
    records = grid(("arith", "copy"))
    assert plot_detection_calibration(records_frame(records), tmp_path / "none") == []
    records += [cell_record("detector", "random", 1000, 0.4, task="arith",
                            defenses=["detector"], calibration={"prada": figures})]
    paths = plot_detection_calibration(records_frame(records), tmp_path / "dc")
    _assert_images(paths, {"dc-arith"})  # copy has no calibration: no figure
    svg = (tmp_path / "dc-arith.svg").read_text()
    for text in ("Detector calibration", "task: arith", "TPR at 1% FPR", "TPR at 5% FPR",
                 "AUC tested", "(prada)", "75%", "25%"):
        assert text in svg, text
