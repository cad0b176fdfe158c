"""``synthetic`` against the real reference server (tiny random model)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from extractbench.attacks.base import train_pairs
from extractbench.attacks.synthetic import Generator, parse, usable_question
from extractbench.config.budget import Budget
from extractbench.reference.lm import TinyLM
from extractbench.tasks import prompt_hash
from extractbench.testing.attacks import BUDGETS, check_blocked, check_campaign, run_attack, task

EXAMPLES = ["What is 47 + 38? Answer with the number only.",
            "Compute 12 - 5. Answer with the number only.",
            "Who founded Verin Harbor? Answer briefly.",
            "Who founded Osk Mill? Answer briefly."]


def test_templates_keep_the_frame_and_refill_slots() -> None:
    frame = parse(EXAMPLES[0])
    assert [k for k, _ in frame.parts if k != "lit"] == ["num", "op", "num"]
    assert [v for k, v in parse(EXAMPLES[2]).parts if k == "ent"] == ["Verin Harbor"]
    gen = Generator(EXAMPLES, random.Random(0), recombine=0.0)
    made = {gen.make() for _ in range(200)}
    assert len(made) > 100  # numbers are refilled, not copied
    assert "Who founded Osk Mill? Answer briefly." in made  # names are swapped among examples
    nums = [p for p in made if p.startswith("What is")]
    assert nums and all(len(p.split()[2]) == 2 for p in nums)  # same width
    assert all(("+" in p or "-" in p) for p in nums)


def test_free_text_is_recombined_by_crossover() -> None:
    reviews = ["Review: the battery died fast and the screen is dim. Label:",
               "Review: lovely colour, fits well, arrived early. Label:"]
    gen = Generator(reviews, random.Random(1), recombine=0.25)
    made = {gen.make() for _ in range(50)}
    assert made - set(reviews)
    assert all(p.startswith("Review:") and p.endswith("Label:") for p in made)


def test_usable_question_filter() -> None:
    assert usable_question("42", EXAMPLES) is None
    assert usable_question("1. What is 90 + 9? Answer with the number only.\nmore",
                           EXAMPLES) == "What is 90 + 9? Answer with the number only."
    assert usable_question(EXAMPLES[0], EXAMPLES) is None
    assert usable_question("ab" + "\x81\xfe" * 12 + " cd ef", EXAMPLES) is None  # byte noise


@pytest.mark.parametrize("kind", list(BUDGETS))
def test_within_budget_and_no_heldout(tiny_lm: TinyLM, tmp_path: Path, kind: str) -> None:
    out = run_attack(tiny_lm, tmp_path, "synthetic", BUDGETS[kind])
    check_campaign(out, min_share=0.8)
    pool = {prompt_hash(i.prompt) for i in task().split("attack_pool")}
    assert len(set(out.sent_hashes()) - pool) > len(out.sent_hashes()) // 2  # its own prompts


def test_never_sends_heldout_even_when_it_could_make_them(tiny_lm: TinyLM,
                                                           tmp_path: Path) -> None:
    # one-digit problems: 110 contents (155 problems), 60 held out, so random templates hit
    # held-out often
    small = task(digits=1, sizes={"attack_pool": 30, "heldout": 60, "benign": 15})
    heldout = {prompt_hash(i.prompt) for i in small.split("heldout")}
    seeds = [i.prompt for i in small.split("attack_pool")[:6]]
    gen = Generator(seeds, random.Random(0), 0.25)
    assert sum(prompt_hash(gen.make()) in heldout for _ in range(100)) > 0  # the risk is real
    out = run_attack(tiny_lm, tmp_path, "synthetic", Budget(queries=60), the_task=small)
    assert out.spent.queries == 60
    assert not set(out.sent_hashes()) & heldout


def test_self_instruct_falls_back_and_keeps_questions_out_of_training(
        tiny_lm: TinyLM, tmp_path: Path) -> None:
    out = run_attack(tiny_lm, tmp_path, "synthetic", Budget(queries=48),
                     {"mode": "self-instruct", "probe": 4, "batch": 8})
    assert "synthetic: self-instruct yield too low; using templates" in out.notes()
    asks = [e for e in out.responses() if e.request.prompt.startswith("Here are example")]
    assert asks
    trained = {p.prompt for p in train_pairs(out.entries)}
    assert not any(p.startswith("Here are example") for p in trained)
    assert out.spent.queries == 48


def test_without_seed_prompts_it_stops_without_sending(tiny_lm: TinyLM, tmp_path: Path) -> None:
    out = run_attack(tiny_lm, tmp_path, "synthetic", Budget(queries=10),
                     ctx_kw={"seed_prompts": []})
    assert out.stop == "no seed prompts" and out.spent.queries == 0


@pytest.mark.parametrize("status", [403, 429])
def test_survives_a_blocking_defense(tiny_lm: TinyLM, tmp_path: Path, status: int) -> None:
    out = run_attack(tiny_lm, tmp_path, "synthetic", Budget(queries=1000), {"batch": 8},
                     block=status)
    check_blocked(out)
