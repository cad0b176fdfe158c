"""Published directions (issue 15): a scenario's ``directions:`` are contrasts of seed means,
checked when the run ends. Expected values are worked by hand from the synthetic records."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractbench.config.directions import direction_problems, judge
from extractbench.config.plan import grid
from extractbench.config.scenario import Direction, ScenarioError, load_scenario
from extractbench.logs.records import CellRecord
from extractbench.testing.records import cell_record

STRIP = {
    "claim": "stripping reasoning costs arithmetic more than classification",
    "source": "DistillGuard 2026",
    "effect": {"of": {"endpoint": "open", "task": "arith"},
               "minus": {"endpoint": "strip", "task": "arith"}},
    "than": {"of": {"endpoint": "open", "task": "cls"},
             "minus": {"endpoint": "strip", "task": "cls"}},
    "min": 0.2,
}


def cells(arith_strip: tuple[float, float], cls_strip: tuple[float, float]) -> list[CellRecord]:
    """Seeds 0 and 1: open endpoints transfer 0.9 (arith) and 0.8 (cls); stripped ones what
    is given, per seed."""
    out = []
    for seed in (0, 1):
        for endpoint, task, value in (("open", "arith", 0.9), ("open", "cls", 0.8),
                                      ("strip", "arith", arith_strip[seed]),
                                      ("strip", "cls", cls_strip[seed])):
            out.append(cell_record(endpoint, "a", 100, value, task=task, seed=seed,
                                   endpoint=endpoint))
    return out


def test_a_direction_is_a_contrast_of_contrasts_with_its_spread_over_seeds() -> None:
    d = Direction.model_validate(STRIP)
    # arith loses 0.9 - mean(0.3, 0.5) = 0.5; cls loses 0.8 - mean(0.7, 0.8) = 0.05
    v = judge(d, cells((0.3, 0.5), (0.7, 0.8)))
    assert v.effect == pytest.approx(0.5) and v.than == pytest.approx(0.05)
    assert v.value == pytest.approx(0.45) and v.holds
    # per seed: (0.9 - 0.3) - (0.8 - 0.7) = 0.5; (0.9 - 0.5) - (0.8 - 0.8) = 0.4
    assert v.per_seed == {0: pytest.approx(0.5), 1: pytest.approx(0.4)}
    assert v.text().startswith("holds: 0.45 (seeds 0.40 to 0.50), needs >= 0.20: stripping")
    # when stripping costs both alike the claim does not hold
    same = judge(d, cells((0.5, 0.5), (0.4, 0.4)))
    assert same.value == pytest.approx(0.0) and same.holds is False
    assert same.text().startswith("does not hold: 0.00")


def test_a_bound_alone_and_a_missing_side() -> None:
    modest = Direction.model_validate({
        "claim": "active beats random only modestly",
        "effect": {"of": {"attack": "active"}, "minus": {"attack": "random"}}, "max": 0.1})
    records = [cell_record("p", "random", 100, 0.6, seed=s) for s in (0, 1)]
    records += [cell_record("p", "active", 100, t, seed=s) for s, t in ((0, 0.65), (1, 0.8))]
    v = judge(modest, records)
    assert v.value == pytest.approx(0.125) and v.holds is False  # 0.725 - 0.6
    # a side with no ok cell: not measured, which is not a pass
    failed = [r if r.attack != "active" else r.model_copy(update={"status": "error"})
              for r in records]
    assert judge(modest, failed).value is None and judge(modest, failed).holds is None
    assert judge(modest, failed).text().startswith("not measured")


SCENARIO = """
version: 1
name: dir
endpoints:
  ref: {kind: reference, model: arith-ref}
tasks:
  arith: {family: arithmetic, params: {digits: 2, ops: ["+"]}, attack_pool: 80, heldout: 40}
attacks:
  rp: {name: random-pool}
budgets: [{queries: 5}, {queries: 30}]
students:
  s: {name: tinylm, params: {d_model: 32, n_layers: 1, steps: 10}}
directions:
  - claim: more queries teach more
    effect: {of: {budget: q30}, minus: {budget: q5}}
    min: 0.0
"""


def test_a_direction_that_selects_no_cell_is_refused_at_validate_time(tmp_path: Path) -> None:
    path = tmp_path / "dir.yaml"
    path.write_text(SCENARIO)
    sc = load_scenario(path)
    assert direction_problems(sc.directions, grid(sc)) == []
    path.write_text(SCENARIO.replace("minus: {budget: q5}", "minus: {budget: q3000}"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert "directions.0.effect.minus: no cell has budget=q3000" in str(err.value)
    path.write_text(SCENARIO.replace("    min: 0.0\n", ""))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert "a direction needs min or max" in str(err.value) and "dir.yaml" in str(err.value)
