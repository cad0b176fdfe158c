"""``random-pool`` against the real reference server (tiny random model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractbench.config.budget import Budget
from extractbench.reference.lm import TinyLM
from extractbench.tasks import prompt_hash
from extractbench.testing.attacks import BUDGETS, check_blocked, check_campaign, run_attack, task


@pytest.mark.parametrize("kind", list(BUDGETS))
def test_within_budget_and_no_heldout(tiny_lm: TinyLM, tmp_path: Path, kind: str) -> None:
    out = run_attack(tiny_lm, tmp_path, "random-pool", BUDGETS[kind])
    check_campaign(out, min_share=0.8)
    assert out.stop == "budget exhausted"


def test_sends_distinct_pool_prompts(tiny_lm: TinyLM, tmp_path: Path) -> None:
    out = run_attack(tiny_lm, tmp_path, "random-pool", Budget(queries=30))
    pool = {prompt_hash(i.prompt) for i in task().split("attack_pool")}
    sent = out.sent_hashes()
    assert len(sent) == 30 and len(set(sent)) == 30
    assert set(sent) <= pool


def test_stops_when_the_pool_runs_out(tiny_lm: TinyLM, tmp_path: Path) -> None:
    small = task(sizes={"attack_pool": 25, "heldout": 10, "benign": 0})
    out = run_attack(tiny_lm, tmp_path, "random-pool", Budget(queries=100), the_task=small)
    assert out.stop == "attack pool exhausted"
    assert out.spent.queries == 25


@pytest.mark.parametrize("status", [403, 429])
def test_survives_a_blocking_defense(tiny_lm: TinyLM, tmp_path: Path, status: int) -> None:
    out = run_attack(tiny_lm, tmp_path, "random-pool", Budget(queries=1000), {"batch": 8},
                     block=status)
    check_blocked(out)
    assert len(out.responses()) == 5
