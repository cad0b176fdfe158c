"""``active`` against the real reference server (tiny random model)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest

from extractbench.attacks import AttackContext
from extractbench.attacks.active import Active, features, ranks
from extractbench.campaign.oracle import Oracle
from extractbench.config.budget import Budget
from extractbench.logs.harvest import HarvestLog, NoteEntry
from extractbench.reference.lm import TinyLM
from extractbench.reference.training import Example
from extractbench.testing.attacks import BUDGETS, check_blocked, check_campaign, run_attack, served

FAST = {"rounds": 3, "probe_steps": 10, "candidates": 64, "batch": 8}


def test_ranks_and_features() -> None:
    assert ranks([3.0, 1.0, 2.0, 1.0]) == [1.0, 0.0, 2 / 3, 0.0]
    assert features("What is 47 + 38? Answer") == {"what", "is", "47", "38", "answer"}


@pytest.mark.parametrize("kind", list(BUDGETS))
def test_within_budget_and_no_heldout(tiny_lm: TinyLM, tmp_path: Path, kind: str) -> None:
    out = run_attack(tiny_lm, tmp_path, "active", BUDGETS[kind], FAST)
    check_campaign(out, min_share=0.8)
    sent = out.sent_hashes()
    assert len(sent) == len(set(sent))  # never asks the same prompt twice
    rounds = [e for e in out.entries if isinstance(e, NoteEntry) and e.text.startswith("active")]
    assert len(rounds) >= 2  # rounds after the first were picked by the probe


def _select(tiny_lm: TinyLM, tmp_path: Path, weight: float, harvest: list[Example],
            cands: list[str], seen: Counter[str], n: int) -> tuple[list[str], float]:
    with served(tiny_lm) as (endpoint, keys, _):
        oracle = Oracle(endpoint, keys, Budget(queries=1), HarvestLog(tmp_path / "s.jsonl"))
        ctx = AttackContext(oracle, cands, "arithmetic", 7, random.Random(0))
        attack = Active(coverage_weight=weight, probe_steps=5, candidates=len(cands))
        picks = attack._select(ctx, harvest, cands, seen, n, 7, 1)
        asyncio.run(oracle.aclose())
    note = [e for e in HarvestLog.read(tmp_path / "s.jsonl") if isinstance(e, NoteEntry)][-1]
    rank = note.data["mean_uncertainty_rank"]
    assert isinstance(rank, float)
    return picks, rank


def test_coverage_prefers_unseen_operands(tiny_lm: TinyLM, tmp_path: Path) -> None:
    seen_ops = [f"What is {a} + {b}? Answer with the number only."
                for a in (11, 12) for b in (21, 22)]
    fresh = [f"What is {a} + {a + 30}? Answer with the number only." for a in range(40, 48)]
    seen: Counter[str] = Counter()
    for p in seen_ops:
        seen.update(features(p))
    harvest = [Example(p, "33") for p in seen_ops]
    cands = [*seen_ops, *fresh]
    random.Random(1).shuffle(cands)
    picks, _ = _select(tiny_lm, tmp_path, 1.0, harvest, cands, seen, 8)
    assert sorted(picks) == sorted(fresh)


def test_uncertainty_picks_where_the_probe_is_unsure(tiny_lm: TinyLM, tmp_path: Path) -> None:
    cands = [f"What is {a} + {b}? Answer with the number only."
             for a in range(10, 20) for b in range(30, 34)]
    harvest = [Example(p, "7") for p in cands[:10]]
    _, rank = _select(tiny_lm, tmp_path, 0.0, harvest, cands, Counter(), 10)
    assert rank > 0.7  # the 10 picked are in the probe's most uncertain quarter


@pytest.mark.parametrize("status", [403, 429])
def test_survives_a_blocking_defense(tiny_lm: TinyLM, tmp_path: Path, status: int) -> None:
    out = run_attack(tiny_lm, tmp_path, "active", Budget(queries=1000), FAST, block=status)
    check_blocked(out)
