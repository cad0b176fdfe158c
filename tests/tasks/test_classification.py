from __future__ import annotations

from collections import Counter

import pytest

from extractbench.tasks import SPLITS, TASKS
from extractbench.tasks.classification import (
    LABELS,
    MAX_PRODUCTS,
    PRODUCT_TEAM,
    PRODUCTS,
    Classification,
)

SIZES = {"attack_pool": 5000, "heldout": 300, "benign": 200}


def test_splits_disjoint_by_content() -> None:
    task = TASKS.get("classification")(0, SIZES)
    keys = {s: [i.key for i in task.split(s)] for s in SPLITS}
    assert {s: len(set(k)) for s, k in keys.items()} == SIZES
    assert not set(keys["heldout"]) & set(keys["attack_pool"])
    assert not set(keys["heldout"]) & set(keys["benign"])
    assert not set(keys["benign"]) & set(keys["attack_pool"])


def test_hidden_rule_labels_by_product_and_is_balanced() -> None:
    assert len(PRODUCTS) == MAX_PRODUCTS
    assert set(Counter(PRODUCT_TEAM.values()).values()) == {MAX_PRODUCTS // len(LABELS)}
    task = Classification(4, SIZES, products=60)
    for item in task.split("heldout"):
        named = [p for p in PRODUCTS[:60] if p in item.key]
        assert len(named) == 1 and item.answer == PRODUCT_TEAM[named[0]]
        assert item.prompt.endswith(f"Ticket: {item.key}")
        assert all(label in item.prompt for label in LABELS)  # the answer format is stated
    assert len({i.answer for i in task.split("attack_pool")}) == len(LABELS)


def test_seed_reproducible_and_changes_split() -> None:
    assert Classification(0, SIZES).split("heldout") == Classification(0, SIZES).split("heldout")
    assert Classification(0, SIZES).split("heldout") != Classification(1, SIZES).split("heldout")


@pytest.mark.parametrize(("text", "want"), [
    ("shipping", "shipping"), ("Shipping.", "shipping"), ("**Technical**", "technical"),
    ("Team: tech", "technical"), ("This ticket should go to the accounts team.", "accounts"),
    ("Not billing; route it to returns.", "returns"), ("no idea", None),
    ("<reasoning>looks like billing</reasoning>\nsales", "sales"),
])
def test_extractor_handles_vendor_formatting(text: str, want: str | None) -> None:
    assert Classification(0, SIZES).extract(text) == want


def test_score_and_attributes() -> None:
    task = Classification(0, SIZES)
    item = task.split("heldout")[0]
    assert task.score(item.answer, item) == 1.0
    assert task.score(next(x for x in LABELS if x != item.answer), item) == 0.0
    assert task.score(None, item) == 0.0
    assert task.reference_model == "classify-ref" and task.reasoning_suffix is None
    assert task.max_answer_tokens > max(map(len, LABELS))


@pytest.mark.parametrize(("params", "match"), [
    ({"products": 5}, "products must be an integer from 6 to 240"),
    ({"products": 241}, "products must be an integer from 6 to 240"),
    ({"labels": 3}, "unknown classification parameter 'labels'"),
])
def test_bad_params_are_clear_errors(params: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TASKS.get("classification")(0, SIZES, **params)


def test_too_few_tickets_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="products=6 has only 720"):
        Classification(0, SIZES, products=6)
