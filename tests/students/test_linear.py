from __future__ import annotations

import random

import pytest

from extractbench.students import STUDENTS, TrainPair
from extractbench.students.linear import LinearStudent, class_key
from extractbench.tasks.classification import Classification


def _harvest(task: Classification, n: int) -> list[TrainPair]:
    return [TrainPair(i.prompt, i.answer) for i in task.split("attack_pool")[:n]]


def test_learns_the_hidden_rule_from_enough_data() -> None:
    task = Classification(0, {"attack_pool": 1500, "heldout": 200}, products=30)
    student = STUDENTS.get("linear")()
    report = student.fit(_harvest(task, 1500), seed=0)
    assert report.details["classes"] == 6
    held = task.split("heldout")
    preds = student.predict([i.prompt for i in held], task.max_answer_tokens)
    acc = sum(task.score(task.extract(p), i) for p, i in zip(preds, held, strict=True))
    assert acc / len(held) >= 0.9
    few = LinearStudent()
    few.fit(_harvest(task, 12), seed=0)
    preds = few.predict([i.prompt for i in held], task.max_answer_tokens)
    assert sum(task.score(task.extract(p), i) for p, i in zip(preds, held, strict=True)) \
        / len(held) < 0.6


def test_responses_differing_in_case_or_full_stop_are_one_class() -> None:
    assert class_key(" Billing.") == class_key("billing")
    rng = random.Random(0)
    pairs = [TrainPair(f"ticket {rng.random()} about a refund", r)
             for r in ["billing", "Billing.", "billing"] * 3]
    pairs += [TrainPair(f"ticket {rng.random()} parcel late", "shipping") for _ in range(9)]
    student = LinearStudent()
    report = student.fit(pairs, seed=0)
    assert report.details["classes"] == 2
    assert student.predict(["a refund please"], 8) == ["billing"]  # the most common spelling


def test_degenerate_harvests() -> None:
    student = LinearStudent()
    student.fit([], seed=0)
    assert student.predict(["x", "y"], 8) == ["", ""]
    student.fit([TrainPair("a", "sales"), TrainPair("b", "sales")], seed=0)
    assert student.predict(["c"], 8) == ["sales"]
    capped = LinearStudent(max_classes=1)
    report = capped.fit([TrainPair("a", "x"), TrainPair("b", "x"), TrainPair("c", "y")], seed=0)
    assert report.details == {"classes": 1, "dropped": 1}
    with pytest.raises(ValueError, match="C > 0"):
        LinearStudent(C=0)


def test_free_text_harvest_with_many_classes_raises_no_warning() -> None:
    pairs = [TrainPair(f"What is {i} + {i}?", str(2 * i)) for i in range(40)]
    student = LinearStudent(max_iter=5)
    student.fit(pairs, seed=0)  # pytest turns any warning into an error
    assert student.predict(["What is 3 + 3?"], 8)[0] in {p.response for p in pairs}
