"""Exactly once, for real: ``extractbench run`` killed with SIGKILL mid-campaign and again
after its attack (while training/scoring), then resumed, ends with the harvest and the metrics
of an uninterrupted run, and nothing is bought twice."""

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
  s: {name: tinylm, params: {d_model: 32, n_layers: 1, min_steps: 30, max_steps: 30}}
seeds: [3]
"""


@pytest.mark.slow
def test_killed_twice_then_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    scenario = tmp_path / "kill.yaml"
    scenario.write_text(SCENARIO)
    results = tmp_path / "results"
    whole = run_with_kills(scenario, results, "whole", [])
    assert whole.exit_code == 0, whole.stderr
    killed = run_with_kills(scenario, results, "killed",
                            [("responses", 60), ("attack-done", 0)])
    assert killed.exit_code == 0, killed.stderr
    assert killed.kills == 2 and killed.attempts == 3
    a, b = summarize(results / "runs" / "whole"), summarize(results / "runs" / "killed")
    assert b["segments"] == 3  # each attempt wrote to the same harvest
    assert b["harvest"] == a["harvest"]
    assert b["metrics"] == a["metrics"]
    assert b["charged"] == a["charged"] <= 200
    assert b["distinct_prompts"] == b["answers"] == a["answers"]
