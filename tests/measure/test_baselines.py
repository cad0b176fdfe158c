"""The best trivial baseline: transfer is measured above the best of a constant answer, the
recipe trained on the task's public examples and the recipe trained on nothing."""

from __future__ import annotations

from collections import Counter

from extractbench.measure.baselines import constant_scores, public_pairs
from extractbench.measure.tasks import PUBLIC_EXAMPLES
from extractbench.tasks import TASKS

SIZES = {"attack_pool": 200, "heldout": 100, "benign": 20}


def test_the_constant_baseline_is_the_majority_rate() -> None:
    task = TASKS.get("classification")(0, SIZES, products=120)
    items = task.split("heldout")
    labels = Counter(i.answer for i in items)
    scores = constant_scores(task)
    assert len(scores) == len(items)
    assert sum(scores) == max(labels.values())  # the audit's "q30 0.21" was this rate
    assert sum(scores) / len(items) >= 1 / len(labels)  # never below uniform chance


def test_the_constant_baseline_of_arithmetic_is_near_zero_but_not_zero_by_construction() -> None:
    task = TASKS.get("arithmetic")(0, SIZES, digits=2, ops=["+"])
    answers = Counter(i.answer for i in task.split("heldout"))
    assert sum(constant_scores(task)) == max(answers.values())


def test_public_examples_are_benign_items_with_their_answers_never_held_out() -> None:
    task = TASKS.get("cipher")(0, SIZES, min_len=4, max_len=6)
    pairs = public_pairs(task)
    benign = task.split("benign")
    assert len(pairs) == PUBLIC_EXAMPLES
    assert [(p.prompt, p.response) for p in pairs] == [
        (i.prompt, i.answer) for i in benign[:PUBLIC_EXAMPLES]]
    held = {i.prompt for i in task.split("heldout")}
    assert not held & {p.prompt for p in pairs}
