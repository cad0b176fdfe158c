from __future__ import annotations

import pytest

from extractbench.tasks import SPLITS, TASKS
from extractbench.tasks.arithmetic import Arithmetic

SIZES = {"attack_pool": 2000, "heldout": 300, "benign": 200}


def test_splits_disjoint_by_content() -> None:
    task = TASKS.get("arithmetic")(0, SIZES, digits=2, ops=["+", "-"])
    keys = {s: {i.key for i in task.split(s)} for s in SPLITS}
    assert {s: len(k) for s, k in keys.items()} == SIZES
    assert not keys["heldout"] & keys["attack_pool"]
    assert not keys["heldout"] & keys["benign"]
    assert not keys["benign"] & keys["attack_pool"]


def test_seed_changes_split_and_is_reproducible() -> None:
    a = Arithmetic(0, SIZES)
    assert a.split("heldout") == Arithmetic(0, SIZES).split("heldout")
    assert a.split("heldout") != Arithmetic(1, SIZES).split("heldout")


def test_answers_are_correct() -> None:
    for item in Arithmetic(3, SIZES, ops=["+", "-", "*"]).split("heldout"):
        a, b = (int(x) for x in item.key.replace("+", " ").replace("-", " ")
                .replace("*", " ").split())
        op = next(c for c in "+-*" if c in item.key)
        assert int(item.answer) == {"+": a + b, "-": a - b, "*": a * b}[op]
        assert str(a) in item.prompt and str(b) in item.prompt


@pytest.mark.parametrize(("text", "want"), [
    ("85", "85"), ("The answer is 85.", "85"), ("47 + 38 = 85", "85"),
    ("**1,234**", "1234"), ("−12", "-12"), ("no idea", None),
])
def test_extractor_handles_vendor_formatting(text: str, want: str | None) -> None:
    assert Arithmetic(0, SIZES).extract(text) == want


def test_too_many_items_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="only"):
        Arithmetic(0, {"attack_pool": 10**6}, digits=1)
