"""Tests of :mod:`extractbench.attacks.base`."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from extractbench.attacks import ATTACKS, AttackContext
from extractbench.attacks.base import TRAIN_PROMPT_NOTE, Tracker, queries_left, train_pairs
from extractbench.campaign.oracle import Oracle
from extractbench.config.budget import Budget, Prices
from extractbench.logs.harvest import HarvestLog, NoteEntry
from extractbench.reference.lm import TinyLM
from extractbench.students import TrainPair
from extractbench.testing.attacks import served

# -- tests of attacks.base ----------------------------------------------------------------


def test_every_builtin_attack_is_registered() -> None:
    assert set(ATTACKS.names()) >= {"random-pool", "synthetic", "cot-coercion",
                                    "logprob-harvest", "active", "stealth"}
    for entry in ATTACKS.entries():
        assert entry.description, entry.name


def test_train_pairs_apply_notes_and_drop_filler(tiny_lm: TinyLM, tmp_path: Path) -> None:
    with served(tiny_lm) as (endpoint, keys, _):
        oracle = Oracle(endpoint, keys, Budget(queries=3), HarvestLog(tmp_path / "h.jsonl"))
        ctx = AttackContext(oracle, ["a"], "arithmetic", 4, random.Random(0))

        async def go() -> None:
            async with oracle:
                outs = await oracle.query_many(["Q1 sent", "Q2 sent", "filler"], max_tokens=3,
                                               top_logprobs=2)
                ctx.train_on(outs[0].index, "Q1")
                ctx.train_on(outs[2].index, None)

        asyncio.run(go())
    got = train_pairs(HarvestLog.read(tmp_path / "h.jsonl"))
    assert [p.prompt for p in got] == ["Q1", "Q2 sent"]
    assert all(isinstance(p, TrainPair) and p.top_logprobs for p in got)
    assert all(len(alts) == 2 for p in got for alts in p.top_logprobs or [])


def test_tracker_stops_on_budget_dead_keys_and_dry_rounds(tiny_lm: TinyLM,
                                                          tmp_path: Path) -> None:
    from extractbench.campaign.oracle import Answer, Failure, Usage

    with served(tiny_lm) as (endpoint, keys, _):
        oracle = Oracle(endpoint, keys, Budget(queries=3), HarvestLog(tmp_path / "h.jsonl"))
        ctx = AttackContext(oracle, [], "arithmetic", 4, random.Random(0))
        tracker = Tracker(ctx, patience=2)
        ok = Answer(0, "attacker-0", "p", "1", "stop", None, Usage(1, 1, False, 0.0), 1)
        limited = Failure(1, "attacker-0", "p", "rate_limit", "slow", 429, attempts=2)
        budget = Failure(2, "attacker-0", "p", "budget", "no room")
        assert tracker.update([ok, limited]) is None
        assert tracker.update([limited]) is None
        assert tracker.update([ok]) is None  # an answer resets the dry count
        assert tracker.update([limited]) is None
        stop = tracker.update([limited])
        assert stop is not None and stop.startswith("blocked: 2 rounds")
        assert Tracker(ctx).update([ok, budget]) == "budget exhausted"
        asyncio.run(oracle.aclose())
    texts = [e.text for e in HarvestLog.read(tmp_path / "h.jsonl") if isinstance(e, NoteEntry)]
    assert "first rate_limit error" in texts
    assert any(t.startswith("stopping: blocked") for t in texts)


def test_queries_left_follows_the_binding_limit(tiny_lm: TinyLM, tmp_path: Path) -> None:
    with served(tiny_lm) as (endpoint, keys, _):
        # worst case of one query: 84 prompt bytes + 16 overhead in, 16 out
        for budget, want in [(Budget(queries=7), 7), (Budget(tokens=1000), 1000 // 116),
                             (Budget(usd=0.001), int(0.001 / (100e-6 + 16 * 2e-6))),
                             (Budget(usd=1.0, queries=50), 50)]:
            oracle = Oracle(endpoint, keys, budget, HarvestLog(tmp_path / "q.jsonl"),
                            prices=Prices(input_per_mtok=1.0, output_per_mtok=2.0))
            try:
                ctx = AttackContext(oracle, [], "arithmetic", 16, random.Random(0))
                assert queries_left(ctx, prompt_bytes=84, max_tokens=16) == want
            finally:
                asyncio.run(oracle.aclose())


def test_train_prompt_note_name_is_stable() -> None:
    # the runner and saved harvests rely on this name
    assert TRAIN_PROMPT_NOTE == "train_prompt"


@pytest.mark.parametrize("name", ["random-pool", "synthetic", "cot-coercion", "logprob-harvest",
                                  "active", "stealth"])
def test_bad_params_are_one_line_errors(name: str) -> None:
    bad = {"random-pool": {"batch": 0}, "synthetic": {"mode": "dream"},
           "cot-coercion": {"fallback": "x"}, "logprob-harvest": {"top_logprobs": 99},
           "active": {"first": 0}, "stealth": {"paraphrase": 2.0}}[name]
    with pytest.raises(ValueError) as e:
        ATTACKS.get(name)(**bad)
    msg = str(e.value)
    assert "\n" not in msg and name.split("-")[0] in msg
