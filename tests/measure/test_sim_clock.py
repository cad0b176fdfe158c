"""Simulated time (issue 14): defended reference cells run on the campaign's simulated clock, so
the same seed gives the same records, audit events and harvests on every run, and a campaign
that waits out rate limits spans simulated time, not wall-clock time. End to end: the real
reference server, the real SDK, real defenses, real (tiny) students."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from extractbench.config.scenario import load_scenario
from extractbench.measure.runner import run_scenario
from extractbench.reference.teachers import model_path

pytestmark = [
    pytest.mark.skipif(not model_path("classify-ref").exists(),
                       reason="reference weights missing (extractbench train-reference)"),
    pytest.mark.usefixtures("one_torch_thread"),
]

SCENARIO = """
version: 1
name: sim
endpoints:
  detector:
    kind: reference
    defenses:
      - {name: detector, params: {action: block, min_queries: 30, test_every: 5,
                                  volume_max: 60, volume_window_s: 60}}
  rate-limit:
    kind: reference
    defenses:
      - {name: rate-limit, params: {requests_per_minute: 30, request_burst: 10}}
  misinformation:                  # decides each request on its own: keys send concurrently
    kind: reference
    defenses:
      - name: misinformation
        params: {threshold: 0.05, reference_task: {family: classification,
                                                   params: {products: 120}, n: 50}}
  hydra:                           # links keys after the fact, changes nothing
    kind: reference
    defenses: [{name: hydra, params: {sweep_s: 2}}]
tasks:
  cls: {family: classification, params: {products: 120}, attack_pool: 400, heldout: 60,
        benign: 60}
attacks:
  rp: {name: random-pool, concurrency: 16}
  st: {name: stealth, keys: 4, concurrency: 16}
budgets: [{queries: 150}]
students:
  lin: {name: linear}
seeds: [5]
benign_traffic:
  cohorts:
    light: {users: 4, pacing_s: 600, min_queries_per_user: 3, prompts: customer}
    heavy: {users: 3, pacing_s: 0.5, min_queries_per_user: 40, burst: 4, focus: 10}
# the ranked task's cells train students on prefixes of the harvest
ranking: {attacks: [rp, st], budgets: [q150], tasks: [cls]}
"""

WALL_CLOCK_FIELDS = {"run_id", "wall_s", "attack_s", "train_s", "eval_s", "provenance",
                     "harvest_path"}


def _run(tmp_path: Path, run_id: str) -> tuple[list[dict[str, Any]], Path]:
    path = tmp_path / "sim.yaml"
    path.write_text(SCENARIO)
    result = run_scenario(load_scenario(path), path, tmp_path / "r", run_id=run_id,
                          progress=False)
    assert all(r.status == "ok" for r in result.records), [r.error for r in result.records]
    rows = [{k: v for k, v in r.model_dump(mode="json").items() if k not in WALL_CLOCK_FIELDS}
            for r in result.records]
    return sorted(rows, key=lambda r: r["cell_id"]), result.run_dir


def _log(path: Path, drop: tuple[str, ...]) -> list[dict[str, Any]]:
    """A JSONL log without its wall-clock fields (and segment headers, which carry pids), in
    each key's request order; keys run side by side (and, where no defense keeps per-key
    state, a key's requests too), so lines are written in a different order each run."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    kept = [{k: v for k, v in r.items() if k not in drop
             # a refusal for budget says what had been charged by then: a wall-clock figure
             and not (k == "message" and r.get("error_type") == "budget")} for r in rows
            if r.get("entry_type") != "segment"]
    return sorted(kept, key=lambda r: (str(r.get("key_id")), r.get("index", -1),
                                       r.get("query_index", -1), r.get("time", -1),
                                       r.get("attempt", -1), str(r.get("entry_type")),
                                       json.dumps(r, sort_keys=True)))


def test_defended_cells_are_reproducible_on_the_simulated_clock(tmp_path: Path) -> None:
    first, run_a = _run(tmp_path, "a")
    second, run_b = _run(tmp_path, "b")
    assert len(first) == 8
    # the defenses acted, so reproducing the records is not trivial
    by = {(r["endpoint"], r["attack"]): r for r in first}
    assert by[("detector", "rp")]["flagged_at"] is not None
    assert by[("detector", "rp")]["benign_cohorts"]["heavy"]["flagged_keys"] > 0
    assert by[("rate-limit", "rp")]["errors_by_type"].get("rate_limit", 0) > 0
    assert by[("misinformation", "rp")]["benign_harms"].get("degrade", 0) > 0
    assert all(r["clock"] == "simulated" and r["sim_s"] > 0 for r in first)
    assert first == second
    # and so are the logs behind them: every request, answer, refusal and audit event
    for sub, drop in (("harvest", ("time", "latency_s")), ("audit", ()),
                      ("benign", ("latency_s",))):
        names = sorted(p.name for p in (run_a / sub).glob("*.jsonl"))
        assert names and names == sorted(p.name for p in (run_b / sub).glob("*.jsonl"))
        for name in names:
            # where keys send concurrently, the endpoint numbers a key's requests as they
            # arrive; the simulated time says which request it was
            also = ("query_index",) if name.startswith("misinformation") else ()
            assert (_log(run_a / sub / name, drop + also)
                    == _log(run_b / sub / name, drop + also)), name

    # the detector's figures calibrated on benign streams are in its records
    cal = by[("detector", "rp")]["calibration"]
    assert set(cal) == {"prada", "duplicate", "volume"}
    assert all(0.0 <= (f["fpr_5"] or 0.0) <= 1.0 for f in cal.values())
    assert not by[("rate-limit", "rp")]["calibration"]  # no detector there
    # the hydra sweeps saw the stealth campaign's four keys and the seven users
    hydra = by[("hydra", "st")]["hydra"]
    assert (hydra["attacker_keys"], hydra["benign_keys"]) == (4, 7)
    assert hydra["sweeps"] > 1
    # calibration users follow the campaign's own rule: replayed with a benign user's seed,
    # the planned stream is exactly what that user sent in the cell
    _plans_replay_the_benign_users(tmp_path / "sim.yaml", run_a, by[("detector", "rp")])

    # the cohorts asked what their plans say: light users in their own wording (one lead
    # each, none the pool or stealth sends), heavy users about ten items of their own
    from extractbench.campaign.benign import CUSTOMER_LEADS, asked

    sent = [json.loads(x) for x in (run_a / "benign" / "detector__cls__rp__q150__lin__s5.jsonl")
            .read_text().splitlines()]
    light = {e["key_id"] for e in sent if "-light-" in e["key_id"]}
    for key in light:
        leads = {next((ld for ld in CUSTOMER_LEADS if e["prompt"].startswith(ld)), None)
                 for e in sent if e["key_id"] == key}
        assert len(leads) == 1 and None not in leads, (key, leads)
    heavy = {e["key_id"] for e in sent if "-heavy-" in e["key_id"]}
    assert len(heavy) == 3 and light
    for key in heavy:
        mine = [e["prompt"] for e in sent if e["key_id"] == key]
        assert len(mine) >= 40 and len(set(mine)) == 10 and mine == [asked(m) for m in mine]
    # and the light users' answers were scored (their wording stripped to the item's)
    assert by[("detector", "rp")]["benign_cohorts"]["light"]["received_score"] is not None
    assert {n: c["prompts"] for n, c in by[("detector", "rp")]["benign_cohorts"].items()} == {
        "light": "customer", "heavy": "matched"}

    # students on prefixes of the harvest: ascending in queries and simulated time, the whole
    # harvest last; the 50% bound is the first point at 50% or more
    for r in first:
        curve = r["prefix_curve"]
        assert len(curve) == 4, r["cell_id"]
        assert [p["queries"] for p in curve] == sorted({p["queries"] for p in curve})
        assert [p["sim_s"] for p in curve] == sorted(p["sim_s"] for p in curve)
        assert curve[-1]["queries"] == r["harvest_pairs"]
        assert curve[-1]["transfer"] == r["transfer"]["value"]
        half = next((p for p in curve if p["transfer"] >= 0.5), None)
        assert r["half_sim_s"] == (half["sim_s"] if half else None)
    # each prefix trained its own student (at 150 queries these defended cells leak little,
    # so the curve is flat and noisy: the check is that the points differ, not that they rise)
    assert sum(len({p["transfer"] for p in r["prefix_curve"]}) > 2 for r in first) >= 6

    # waiting out a rate limit cost simulated time: every answer past the burst of 10 waited
    # for the bucket's 2 s, and the unlimited stealth campaign took a fraction of that
    limited = by[("rate-limit", "rp")]
    assert limited["sim_s"] >= (limited["harvest_pairs"] - 10) * 2.0
    assert by[("detector", "st")]["sim_s"] < limited["sim_s"] / 10


def _plans_replay_the_benign_users(path: Path, run_dir: Path, record: dict[str, Any]) -> None:
    import random

    from extractbench.logs.harvest import HarvestLog
    from extractbench.measure.calibration import (
        benign_streams,
        cohort_plans,
        planned_stream,
        stream_of_harvest,
    )
    from extractbench.measure.fleet import Keys
    from extractbench.measure.tasks import TaskBank

    sc = load_scenario(path)
    keys = Keys.mint(1, {n: c.users for n, c in sc.benign_traffic.plan().items()})
    plans = cohort_plans(sc.benign_traffic, keys.cohort_of)
    slug = record["cell_id"].replace("/", "__") + ".jsonl"
    attacker = stream_of_harvest(HarvestLog.read(run_dir / "harvest" / slug))
    sent = benign_streams(json.loads(x) for x in (run_dir / "benign" / slug).read_text()
                          .splitlines())
    prompts = [i.prompt for i in TaskBank(sc).get(record["task"], record["seed"])
               .split("benign")]
    cap = max(map(len, attacker.values()))
    assert sorted(sent) == sorted(plans)
    for key, stream in sent.items():
        planned = planned_stream(plans[key], prompts,
                                 random.Random(f"{record['seed']}/benign/{key}"),
                                 until=record["sim_s"], cap=cap)
        assert planned == stream, key
