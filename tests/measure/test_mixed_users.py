"""Benign users who also ask about other tasks (issue 14: "other task mixes"). A cohort's
``mix`` sends a share of each user's requests to the endpoint's model for another task; those
answers are scored against that task's ground truth, and a defense that spoils them is gated.
End to end: the real reference server with two shipped teachers, the real SDK, real defenses.

misinformation here keeps a classification reference set, so a customer's arithmetic question
is out of its distribution and comes back wrong; hydra changes no answer, so the same mix
keeps the teacher's quality there. Both facts are what the defenses do by their definition,
not figures copied from a run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from extractbench.config.scenario import ScenarioError, load_scenario
from extractbench.measure.runner import run_scenario
from extractbench.reference.teachers import model_path

pytestmark = [
    pytest.mark.skipif(not (model_path("classify-ref").exists()
                            and model_path("arith-cot-ref").exists()),
                       reason="reference weights missing (extractbench train-reference)"),
    pytest.mark.usefixtures("one_torch_thread"),
]

SCENARIO = """
version: 1
name: mixed
endpoints:
  misinformation:
    kind: reference
    defenses:
      - name: misinformation
        params: {threshold: 0.2, reference_task: {family: classification,
                                                  params: {products: 120}, n: 100}}
  hydra:
    kind: reference
    defenses: [{name: hydra, params: {sweep_s: 5}}]
tasks:
  cls: {family: classification, params: {products: 120}, attack_pool: 300, heldout: 40,
        benign: 60}
  arith: {family: arithmetic, params: {digits: 2, ops: ["+"]}, attack_pool: 100, heldout: 40,
          benign: 60}
attacks:
  rp: {name: random-pool, concurrency: 8}
budgets: [{queries: 60}]
students:
  lin: {name: linear}
seeds: [3]
grids:
  - {tasks: [cls]}
benign_traffic:
  cohorts:
    light: {users: 4, pacing_s: 1, min_queries_per_user: 12, prompts: customer,
            mix: {arith: 0.5}}
    heavy: {users: 2, pacing_s: 0.5, min_queries_per_user: 10}
"""


def test_a_cohort_that_also_asks_about_another_task_is_scored_and_gated_there(
        tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(SCENARIO)
    result = run_scenario(load_scenario(path), path, tmp_path / "r", progress=False)
    assert all(r.status == "ok" for r in result.records), [r.error for r in result.records]
    by = {r.endpoint: r for r in result.records}
    assert set(by) == {"misinformation", "hydra"}  # arith is asked about, never attacked

    sent = [json.loads(x) for x in (result.run_dir / "benign" /
                                    "hydra__cls__rp__q60__lin__s3.jsonl").read_text()
            .splitlines()]
    light = [e for e in sent if "-light-" in e["key_id"]]
    heavy = [e for e in sent if "-heavy-" in e["key_id"]]
    mixed = [e for e in light if e["task"] == "arith"]
    # about half of the light users' requests are arithmetic (each user's list is half and
    # half, in a seeded order); heavy users have no mix
    assert 0 < len(mixed) < len(light) and all(e["task"] is None for e in heavy)
    # an arithmetic question goes in the pool's wording (the arithmetic teacher does not read
    # past a greeting), a classification one in the customer's own
    from extractbench.campaign.benign import asked
    from extractbench.measure.tasks import TaskBank

    bank = TaskBank(load_scenario(path))
    arith = {i.prompt for i in bank.get("arith", 3).split("benign")}
    assert all(e["prompt"] in arith for e in mixed)
    own = {i.prompt for i in bank.get("cls", 3).split("benign")}
    assert all(asked(e["prompt"]) in own and asked(e["prompt"]) != e["prompt"]
               for e in light if e["task"] is None)
    assert all(e["text"] is not None for e in mixed)

    hydra, misinfo = by["hydra"].benign_cohorts, by["misinformation"].benign_cohorts
    assert hydra["light"].mixed_utility is not None and misinfo["light"].mixed_utility
    assert hydra["heavy"].mixed_utility is None
    # hydra changes no answer: the arithmetic teacher's quality reaches the users
    assert hydra["light"].mixed_utility["arith"] >= 0.9
    assert hydra["light"].harmed_keys == 0
    # misinformation poisons what is far from its classification set: the arithmetic answers
    # come back wrong, and every light user was harmed
    assert misinfo["light"].mixed_utility["arith"] < 0.5
    assert misinfo["light"].harmed_keys == 4
    # the cohort's own-task utility is over its classification requests only
    assert misinfo["light"].utility is not None and misinfo["light"].utility >= 0.9

    # the board gates on the mixed task's utility too
    from extractbench.report.analysis import analyze
    from extractbench.report.frames import records_frame

    rows = {s.keys["profile"]: s for s in analyze(records_frame(result.records),
                                                   n_boot=20).board.summaries}
    assert "cohort light: utility on arith" in rows["misinformation"].unranked_reason
    assert "utility on arith" not in rows["hydra"].unranked_reason

    # calibration users follow the same rule: replayed with a user's seed, the planned
    # stream (mix included) is what that user sent
    _planned_streams_match(path, result.run_dir, sent, by["hydra"].sim_s)


def _planned_streams_match(path: Path, run_dir: Path, sent: list[dict[str, object]],
                           sim_s: float | None) -> None:
    from extractbench.logs.harvest import HarvestLog
    from extractbench.measure.calibration import (
        benign_streams,
        cohort_plans,
        planned_stream,
        stream_of_harvest,
    )
    from extractbench.measure.fleet import Keys
    from extractbench.measure.tasks import TaskBank

    assert sim_s is not None
    sc = load_scenario(path)
    bank = TaskBank(sc)
    cls = bank.get("cls", 3)
    keys = Keys.mint(1, {n: c.users for n, c in sc.benign_traffic.plan().items()})
    plans = cohort_plans(sc.benign_traffic, keys.cohort_of, cls, {"arith": bank.get("arith", 3)},
                         "cls")
    attacker = stream_of_harvest(HarvestLog.read(run_dir / "harvest" /
                                                 "hydra__cls__rp__q60__lin__s3.jsonl"))
    streams = benign_streams(sent)
    prompts = [i.prompt for i in cls.split("benign")]
    for key, stream in streams.items():
        planned = planned_stream(plans[key], prompts, random.Random(f"3/benign/{key}"),
                                 until=sim_s, cap=max(map(len, attacker.values())))
        assert planned == stream, key


@pytest.mark.parametrize(("mix", "problem"), [
    ("{knowledge: 0.2}", "benign_traffic.cohorts.light.mix: 'knowledge' is not in tasks"),
    ("{arith: 0.6, cls: 0.5}", "the shares add up to 1 or more"),
    ("{arith: 0}", "greater than 0"),
])
def test_a_bad_mix_is_refused_with_the_field_and_the_fix(tmp_path: Path, mix: str,
                                                         problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SCENARIO.replace("mix: {arith: 0.5}", f"mix: {mix}"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert problem in str(err.value) and "bad.yaml" in str(err.value)
