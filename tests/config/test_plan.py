"""The plan: the grid's cells in order, and a grid that is neither empty nor huge."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractbench.config.plan import MAX_CELLS, grid, grid_problems, grid_size_bound
from extractbench.config.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[2]

BASE = """
version: 1
name: t
endpoints:
  ref: {kind: reference}
tasks:
  kb: {family: knowledge, attack_pool: 100, heldout: 20, benign: 10}
attacks:
  rp: {name: random-pool}
budgets: [{queries: 300}, {queries: 30}]
students:
  s: {name: lookup}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def test_cells_run_smallest_budget_first_and_name_their_files(tmp_path: Path) -> None:
    cells = grid(load_scenario(write(tmp_path, BASE)))
    assert [c.id for c in cells] == ["ref/kb/rp/q30/s/s0", "ref/kb/rp/q300/s/s0"]
    assert cells[0].slug == "ref__kb__rp__q30__s__s0"


def test_the_shipped_grids_are_within_the_limit() -> None:
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        sc = load_scenario(path)
        assert grid_problems(sc) == []
        assert 0 < len(grid(sc)) <= grid_size_bound(sc) <= MAX_CELLS


@pytest.mark.parametrize(("grids", "line"), [
    ("grids: []", "grids: List should have at least 1 item after validation, not 0 (add at "
     "least one entry)"),
    ("grids: [{seeds: []}]", "grids.0.seeds: List should have at least 1 item after "
     "validation, not 0 (add at least one entry)"),
    ("grids: [{budgets: [q31]}]", "(top level): grids.0.budgets: 'q31' is not in budgets "
     "(known: q300, q30)"),
])
def test_a_grid_without_cells_is_refused(tmp_path: Path, grids: str, line: str) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, BASE + grids + "\n"))
    assert err.value.lines == [f"{tmp_path / 'plan.yaml'}: {line}"]


def test_a_huge_grid_is_refused_without_building_it(tmp_path: Path) -> None:
    seeds = ", ".join(str(i) for i in range(3000))
    budgets = ", ".join(f"{{queries: {i}}}" for i in range(1, 200))
    text = BASE.replace("budgets: [{queries: 300}, {queries: 30}]", f"budgets: [{budgets}]")
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text + f"seeds: [{seeds}]\n"))
    assert err.value.lines == [
        f"{tmp_path / 'plan.yaml'}: (top level): the grid has up to 597,000 cells, more than "
        "20,000 (use grids: to choose sub-grids, or split it into several scenarios)"]
    seeds = ", ".join(str(i) for i in range(4001))
    budgets = ", ".join(f"{{queries: {i}}}" for i in range(1, 6))
    text = BASE.replace("budgets: [{queries: 300}, {queries: 30}]", f"budgets: [{budgets}]")
    with pytest.raises(ScenarioError, match=r"\(top level\): the grid has 20,005 cells, more"):
        load_scenario(write(tmp_path, text + f"seeds: [{seeds}]\n"))
