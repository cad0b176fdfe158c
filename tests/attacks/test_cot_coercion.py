"""``cot-coercion`` against the real reference server (tiny random model)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from extractbench.attacks.base import DEFAULT_REASONING_SUFFIX, train_pairs
from extractbench.attacks.cot_coercion import coerce, shows_working, strip_format
from extractbench.config.budget import Budget
from extractbench.defenses import Defense, RequestContext
from extractbench.reference.lm import TinyLM
from extractbench.testing.attacks import BUDGETS, check_blocked, check_campaign, run_attack, task
from extractbench.types import Generation


class Terse(Defense):
    """Strips the working: every answer becomes a bare number."""

    name = "test-terse"

    def transform(self, ctx: RequestContext, generations: list[Generation]) -> list[Generation]:
        return [replace(g, text="42", logprobs=None) for g in generations]


@pytest.mark.parametrize(("prompt", "want"), [
    ("What is 47 + 38? Answer with the number only.", "What is 47 + 38?"),
    ("Calculate 9 - 1 and answer with the number only.", "Calculate 9 - 1."),
    ("Who founded Osk Mill?", "Who founded Osk Mill?"),
])
def test_strip_format_drops_answer_only_instructions(prompt: str, want: str) -> None:
    assert strip_format(prompt) == want
    assert coerce(prompt, "Show working.") == f"{want} Show working."


def test_what_counts_as_working() -> None:
    assert shows_working("<reasoning>47 + 38 = 85</reasoning>\n85", 7)
    assert not shows_working("85", 7)
    assert not shows_working("4" * 56, 7)  # a degenerate repeat is not reasoning


@pytest.mark.parametrize("kind", list(BUDGETS))
def test_within_budget_and_no_heldout(tiny_lm: TinyLM, tmp_path: Path, kind: str) -> None:
    out = run_attack(tiny_lm, tmp_path, "cot-coercion", BUDGETS[kind])
    check_campaign(out, min_share=0.7)


def test_asks_for_working_and_trains_on_the_bare_question(tiny_lm: TinyLM,
                                                          tmp_path: Path) -> None:
    out = run_attack(tiny_lm, tmp_path, "cot-coercion", Budget(queries=20),
                     ctx_kw={"reasoning_max_tokens": 40})
    sent = [e.request for e in out.responses()]
    assert all(r.prompt.endswith(DEFAULT_REASONING_SUFFIX) for r in sent)
    assert all(r.params.max_tokens == 40 for r in sent)
    pool = {i.prompt for i in task().split("attack_pool")}
    pairs = train_pairs(out.entries)
    assert len(pairs) == 20 and all(p.prompt in pool for p in pairs)
    assert max(len(p.response) for p in pairs) > 14  # long answers are kept whole


def test_uses_the_tasks_own_reasoning_request(tiny_lm: TinyLM, tmp_path: Path) -> None:
    # the task's convention (arithmetic: the prompt as is + " Show your working.") is kept
    out = run_attack(tiny_lm, tmp_path, "cot-coercion", Budget(queries=4),
                     ctx_kw={"reasoning_suffix": " Show your working."})
    pool = {i.prompt for i in task().split("attack_pool")}
    sent = [e.request.prompt for e in out.responses()]
    assert len(sent) == 4
    assert all(s.endswith("number only. Show your working.") for s in sent)
    assert all(s.removesuffix(" Show your working.") in pool for s in sent)


def test_falls_back_to_bare_prompts_when_the_working_is_stripped(tiny_lm: TinyLM,
                                                                  tmp_path: Path) -> None:
    out = run_attack(tiny_lm, tmp_path, "cot-coercion", Budget(queries=40),
                     {"probe": 8, "batch": 8}, extra=[Terse()])
    assert any("falling back to bare prompts" in n for n in out.notes())
    sent = [e.request for e in out.responses()]
    assert sent[0].prompt.endswith(DEFAULT_REASONING_SUFFIX)
    assert not sent[-1].prompt.endswith(DEFAULT_REASONING_SUFFIX)
    assert sent[-1].params.max_tokens == task().max_answer_tokens
    assert out.spent.queries == 40


@pytest.mark.parametrize("status", [403, 429])
def test_survives_a_blocking_defense(tiny_lm: TinyLM, tmp_path: Path, status: int) -> None:
    out = run_attack(tiny_lm, tmp_path, "cot-coercion", Budget(queries=1000), {"batch": 8},
                     block=status)
    check_blocked(out)
