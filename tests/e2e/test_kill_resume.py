"""Exactly once, for real: ``extractbench run`` killed with SIGKILL after its attack (while
training/scoring), then resumed, ends with the harvest and the metrics of an uninterrupted run.
Killed mid-campaign too, the queries it had in flight were served (and would be billed) but
their answers are lost: they are charged, what every attempt across the three processes sent
stays within the budget, and the harvest is the uninterrupted one less at most those."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractbench.testing.crash import run_with_kills, summarize

SCENARIO = """
version: 1
name: kill-resume
endpoints:
  ref: {kind: reference, model: arith-ref}
tasks:
  arith: {family: arithmetic, params: {digits: 2, ops: ["+"]}, attack_pool: 400, heldout: 40,
          benign: 10}
attacks:
  rp: {name: random-pool}
budgets: [{queries: 200}]
students:
  s: {name: tinylm, params: {d_model: 32, n_layers: 1, steps: 30}}
seeds: [3]
"""


@pytest.mark.slow
def test_killed_then_resumed_equals_uninterrupted_or_charges_what_was_in_flight(
        tmp_path: Path) -> None:
    scenario = tmp_path / "kill.yaml"
    scenario.write_text(SCENARIO)
    results = tmp_path / "results"
    whole = run_with_kills(scenario, results, "whole", [])
    assert whole.exit_code == 0, whole.stderr
    a = summarize(results / "runs" / "whole")
    assert a["sent"] == a["charged"] == a["answers"] == 200 and a["interrupted"] == 0

    after = run_with_kills(scenario, results, "after", [("attack-done", 0)])
    assert after.exit_code == 0 and after.kills == 1, after.stderr
    b = summarize(results / "runs" / "after")
    assert b["segments"] == 2 and b["interrupted"] == 0
    assert b["harvest"] == a["harvest"] and b["metrics"] == a["metrics"]  # exact

    mid = run_with_kills(scenario, results, "mid", [("responses", 60), ("attack-done", 0)])
    assert mid.exit_code == 0, mid.stderr
    assert mid.kills == 2 and mid.attempts == 3
    c = summarize(results / "runs" / "mid")
    assert c["segments"] == 3  # each attempt wrote to the same harvest
    assert c["sent"] == c["charged"] <= 200  # every attempt that left, charged once
    lost = c["interrupted"]
    assert c["answers"] == 200 - lost == c["distinct_prompts"]
    assert set(c["harvest"]) <= set(a["harvest"])  # same query, index and answer
