from __future__ import annotations

from collections import Counter

import pytest

from extractbench.tasks import SPLITS, TASKS
from extractbench.tasks.classification import (
    LABELS,
    MAX_PRODUCTS,
    OPENERS,
    PRODUCT_TEAM,
    PRODUCTS,
    Classification,
)

SIZES = {"attack_pool": 5000, "heldout": 300, "benign": 200}


def test_splits_disjoint_by_content() -> None:
    task = TASKS.get("classification")(0, SIZES)
    assert {s: len({i.prompt for i in task.split(s)}) for s in SPLITS} == SIZES
    keys = {s: [i.key for i in task.split(s)] for s in SPLITS}
    assert len(set(keys["heldout"])) == SIZES["heldout"]  # one ticket per held-out content
    assert len(set(keys["benign"])) == SIZES["benign"]
    assert not set(keys["heldout"]) & set(keys["attack_pool"])
    assert not set(keys["heldout"]) & set(keys["benign"])
    assert not set(keys["benign"]) & set(keys["attack_pool"])


def test_hidden_rule_labels_by_product_and_is_balanced() -> None:
    assert len(PRODUCTS) == MAX_PRODUCTS
    assert set(Counter(PRODUCT_TEAM.values()).values()) == {MAX_PRODUCTS // len(LABELS)}
    task = Classification(4, {"attack_pool": 3000, "heldout": 300, "benign": 200}, products=60)
    for item in task.split("heldout"):
        named = [p for p in PRODUCTS[:60] if p in item.key]
        assert len(named) == 1 and item.answer == PRODUCT_TEAM[named[0]]
        body = item.prompt.split("\nTicket: ")[1]
        assert body.casefold().endswith(item.key.casefold())  # opener + complaint
        assert body.removesuffix(body[-len(item.key):]) in OPENERS
        assert all(label in item.prompt for label in LABELS)  # the answer format is stated
    assert len({i.answer for i in task.split("attack_pool")}) == len(LABELS)
    # every held-out ticket's product is in the pool in other complaints: the rule is learnable
    pooled = {p for i in task.split("attack_pool") for p in PRODUCTS[:60] if p in i.key}
    assert {p for i in task.split("heldout") for p in PRODUCTS[:60] if p in i.key} <= pooled


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
    with pytest.raises(ValueError, match=r"heldout=300 but products=6 has only 80 contents for "
                                         r"heldout \(2 in every 3 of its 120\); lower heldout"):
        Classification(0, SIZES, products=6)
    with pytest.raises(ValueError, match=r"attack_pool=5000 but products=6 has only \d+ items "
                                         r"left for it beyond heldout=30 and benign=20 \(of "
                                         r"720\); lower attack_pool"):
        Classification(0, {"attack_pool": 5000, "heldout": 30, "benign": 20}, products=6)
