"""Scenario gates: thresholds per cell, and `beats` gates that compare a cell with the same
cell trained by another student (the lookup floor)."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractbench.config.gates import GateBook
from extractbench.config.scenario import ScenarioError, load_scenario
from extractbench.logs.records import CellRecord, Interval, Provenance

SCENARIO = """
version: 1
name: gates
endpoints:
  ref: {kind: reference}
tasks:
  kb: {family: knowledge, attack_pool: 100, heldout: 20, benign: 10}
attacks:
  rp: {name: random-pool}
budgets: [{queries: 30}, {queries: 100}]
students:
  tiny: {name: tinylm}
  lookup: {name: lookup}
gates:
  - {metric: transfer, beats: lookup, where: {budget: q100}}
"""

PROVENANCE = Provenance(
    scenario_name="gates", scenario_path="gates.yaml", scenario_hash="f" * 64,
    git_sha="0123456789abcdef", extractbench_version="0.1.0", package_versions={},
    python="3.11", platform="test", torch_threads=1,
)


def record(student: str, transfer: float, budget: str = "q100", seed: int = 0) -> CellRecord:
    return CellRecord.model_validate(dict(
        run_id="r", cell_id=f"ref/kb/rp/{budget}/{student}/s{seed}", status="ok",
        endpoint="ref", profile="ref", model="m", task="kb", attack="rp", student=student,
        budget={"queries": int(budget[1:])}, budget_label=budget, seed=seed,
        queries=int(budget[1:]), input_tokens=0, output_tokens=0, provenance=PROVENANCE,
        teacher_score=1.0, base_score=0.0, student_score=transfer,
        transfer=Interval(value=transfer, low=transfer, high=transfer)))


def runner(tmp_path: Path, text: str = SCENARIO) -> GateBook:
    path = tmp_path / "gates.yaml"
    path.write_text(text)
    return GateBook(load_scenario(path).gates)


@pytest.mark.parametrize("floor_first", [True, False], ids=["floor-first", "floor-last"])
def test_beats_gate_fails_a_student_at_or_below_the_floor(tmp_path: Path,
                                                          floor_first: bool) -> None:
    r = runner(tmp_path)
    order = [record("lookup", 0.79), record("tiny", 0.41)]
    failures = [f for rec in (order if floor_first else order[::-1])
                for f in r.check(rec)]
    assert failures == ["ref/kb/rp/q100/tiny/s0: transfer 0.410 does not beat lookup (0.790)"]


def test_beats_gate_passes_above_the_floor_and_ignores_other_cells(tmp_path: Path) -> None:
    r = runner(tmp_path)
    assert r.check(record("tiny", 0.95)) == []
    assert r.check(record("lookup", 0.79)) == []
    # q30 is outside `where`, and a different seed is a different pair
    assert r.check(record("lookup", 0.5, budget="q30")) == []
    assert r.check(record("tiny", 0.1, budget="q30")) == []
    assert r.check(record("tiny", 0.2, seed=1)) == []  # its floor has not run


def test_beats_gate_names_an_unknown_student(tmp_path: Path) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text(SCENARIO.replace("beats: lookup", "beats: nearest"))
    with pytest.raises(ScenarioError, match=r"gates\.0\.beats: 'nearest' is not in students"):
        load_scenario(path)
    path.write_text(SCENARIO.replace("beats: lookup, ", ""))
    with pytest.raises(ScenarioError, match="a gate needs min, max or beats"):
        load_scenario(path)


def test_beats_gate_with_min_holds_the_learned_student_to_both(tmp_path: Path) -> None:
    r = runner(tmp_path, SCENARIO.replace("beats: lookup,", "beats: lookup, min: 0.5,"))
    assert r.check(record("lookup", 0.2)) == []  # the floor is not held to min
    assert r.check(record("tiny", 0.4)) == [
        "ref/kb/rp/q100/tiny/s0: transfer 0.400 < min 0.5"]


# -- a gate must select a cell of the grid (one that selects none checks nothing) ------------


def gate_lines(tmp_path: Path, gate: str, text: str = SCENARIO) -> list[str]:
    path = tmp_path / "gates.yaml"
    path.write_text(text.replace("  - {metric: transfer, beats: lookup, where: {budget: q100}}",
                                 f"  - {gate}"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert all(line.startswith(f"{path}: ") for line in err.value.lines)
    return [line.removeprefix(f"{path}: ") for line in err.value.lines]


@pytest.mark.parametrize(("gate", "line"), [
    ("{metric: transfer, min: 0.5, where: {budgte: q100}}",
     "gates.0.where.budgte: Input should be 'endpoint', 'task', 'attack', 'student', 'budget' "
     "or 'seed' (use one of the allowed values)"),
    ("{metric: transfer, min: 0.5, where: {defense: rate-limit}}",
     "gates.0.where.defense: Input should be 'endpoint', 'task', 'attack', 'student', 'budget' "
     "or 'seed' (use one of the allowed values)"),
    ("{metric: transfer, min: 0.5, where: {budget: q1000}}",
     "gates.0.where.budget: 'q1000' matches no cell (the grid's budgets: q100, q30)"),
    ("{metric: transfer, min: 0.5, where: {endpoint: reference}}",
     "gates.0.where.endpoint: 'reference' matches no cell (the grid's endpoints: ref)"),
    ("{metric: transfer, min: 0.5, where: {task: kb, attack: random-pool}}",
     "gates.0.where.attack: 'random-pool' matches no cell (the grid's attacks: rp)"),
    ("{metric: transfer, min: 0.5, where: {student: tinylm}}",
     "gates.0.where.student: 'tinylm' matches no cell (the grid's students: lookup, tiny)"),
    ("{metric: transfer, min: 0.5, where: {seed: 1}}",
     "gates.0.where.seed: 1 matches no cell (the grid's seeds: 0)"),
    ("{metric: transfer, min: 0.5, where: {seed: 0.0}}",
     "gates.0.where.seed: 0.0 matches no cell (the grid's seeds: 0)"),
    ("{metric: transfer, min: 0.5, where: {seed: true}}",
     "gates.0.where.seed: expected a name or a number, got True (write a name, e.g. q300, or a "
     "seed)"),
    ("{metric: transfer, min: 0.5, where: {seed: .nan}}",
     "gates.0.where.seed: .nan is not a finite number (use a finite number)"),
    ("{metric: transfer, min: 0.9, max: 0.1}",
     "gates.0: min 0.9 is above max 0.1, so every cell fails (swap them)"),
    ("{metric: transfer, min: .inf}",
     "gates.0.min: Input should be a finite number (use a finite number)"),
    ("{metric: transfer, beats: lookup, where: {student: lookup}}",
     "gates.0.beats: no cell it selects has a partner trained with 'lookup' (the same endpoint, "
     "task, attack, budget and seed; put 'lookup' in the same sub-grids)"),
])
def test_a_gate_that_would_check_no_cell_is_refused(tmp_path: Path, gate: str,
                                                    line: str) -> None:
    assert gate_lines(tmp_path, gate) == [line]


def test_values_no_cell_has_together_are_refused(tmp_path: Path) -> None:
    text = SCENARIO + "grids:\n  - {students: [tiny], budgets: [q30]}\n" \
                      "  - {students: [lookup], budgets: [q100]}\n"
    assert gate_lines(tmp_path, "{metric: transfer, min: 0.5, where: {student: tiny, "
                                "budget: q100}}", text) == [
        "gates.0.where: no cell has student=tiny, budget=q100 (check grids:)"]
    # the floor is in another sub-grid than the learned student: no pair at q100
    assert gate_lines(tmp_path, "{metric: transfer, beats: lookup}", text) == [
        "gates.0.beats: no cell it selects has a partner trained with 'lookup' (the same "
        "endpoint, task, attack, budget and seed; put 'lookup' in the same sub-grids)"]


def test_a_gate_on_any_cell_of_the_grid_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "gates.yaml"
    for gate in ("{metric: transfer, min: 0.5, where: {seed: 0, budget: q30}}",
                 "{metric: transfer, min: 0.5, where: {seed: '0'}}",
                 "{metric: teacher_score, min: 0.5}",
                 "{metric: transfer, min: 0.5, max: 0.5}",
                 "{metric: transfer, beats: lookup, where: {student: tiny}}"):
        path.write_text(SCENARIO.replace(
            "  - {metric: transfer, beats: lookup, where: {budget: q100}}", f"  - {gate}"))
        assert len(load_scenario(path).gates) == 1, gate
