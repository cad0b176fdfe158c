"""Plots render to non-empty PNG and SVG files with readable labels."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl

from extractbench.plots import plot_transfer_vs_budget, plot_transfer_vs_cost, set_style
from extractbench.records import CellRecord, Interval, Provenance
from extractbench.results import records_frame, seed_means

PROVENANCE = Provenance(
    scenario_name="unit", scenario_path="scenarios/unit.yaml", scenario_hash="d" * 64,
    git_sha="unknown", extractbench_version="0.1.0", package_versions={}, python="3.11",
    platform="test", torch_threads=1,
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cell(profile: str, task: str, attack: str, queries: int, transfer: float,
         cost: float = 0.0, budget: dict[str, float] | None = None) -> CellRecord:
    return CellRecord(
        run_id="r", cell_id=f"{profile}/{task}/{attack}/q{queries}/s/0", status="ok",
        endpoint="ref", profile=profile, model="m", task=task, attack=attack, student="s",
        budget=budget or {"queries": queries}, budget_label=f"q{queries}", seed=0,
        teacher_score=0.9, base_score=0.1, student_score=0.1 + 0.8 * transfer,
        transfer=Interval(value=transfer, low=transfer - 0.08, high=transfer + 0.08),
        queries=queries, input_tokens=30 * queries, output_tokens=4 * queries, cost_usd=cost,
        provenance=PROVENANCE,
    )


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
    assert "budget (queries, log scale)" in svg and "task: arith" in svg
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
