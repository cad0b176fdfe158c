from __future__ import annotations

from collections import defaultdict

import pytest

from extractbench.tasks import SPLITS, TASKS
from extractbench.tasks.knowledge import (
    ATTRIBUTES,
    ENTITIES,
    FACTS,
    MAX_ENTITIES,
    TEMPLATES,
    VALUES,
    Knowledge,
)

SIZES = {"attack_pool": 500, "heldout": 200, "benign": 100}


def _fact(key: str) -> tuple[str, str]:
    entity, attribute, _ = key.split("|")
    return entity, attribute


def test_splits_disjoint_by_question() -> None:
    task = TASKS.get("knowledge")(0, SIZES, entities=50)
    keys = {s: [i.key for i in task.split(s)] for s in SPLITS}
    prompts = {s: {i.prompt for i in task.split(s)} for s in SPLITS}
    assert {s: len(set(k)) for s, k in keys.items()} == SIZES
    for a, b in (("heldout", "attack_pool"), ("heldout", "benign"), ("benign", "attack_pool")):
        assert not set(keys[a]) & set(keys[b])
        assert not prompts[a] & prompts[b]


def test_heldout_facts_are_learnable_only_from_the_same_entity() -> None:
    """Every held-out fact keeps other phrasings in the pool; held-out and benign take one
    phrasing of every fact before a second of any; each held-out question is about one
    entity."""
    task = Knowledge(3, {"heldout": 200, "benign": 100, "attack_pool": 500}, entities=50)
    pool_by_fact: dict[tuple[str, str], int] = defaultdict(int)
    for item in task.split("attack_pool"):
        pool_by_fact[_fact(item.key)] += 1
    for item in task.split("heldout"):
        entity, attribute = _fact(item.key)
        assert pool_by_fact[(entity, attribute)] >= 2
        assert entity in item.prompt and item.answer == FACTS[(entity, attribute)]
    reserved = defaultdict(int)
    for item in [*task.split("heldout"), *task.split("benign")]:
        reserved[_fact(item.key)] += 1
    assert len(reserved) == 200 and max(reserved.values()) == 2  # 300 questions, 200 facts


def test_knowledge_base_is_fixed_and_seed_only_moves_questions() -> None:
    assert len(ENTITIES) == len(set(ENTITIES)) == MAX_ENTITIES
    a, b = Knowledge(0, SIZES), Knowledge(1, SIZES)
    assert a.split("heldout") == Knowledge(0, SIZES).split("heldout")
    assert a.split("heldout") != b.split("heldout")
    for item in [*a.split("heldout"), *b.split("heldout")]:
        assert item.answer == FACTS[_fact(item.key)]
    assert {v for (_, attr), v in FACTS.items() if attr == "pet"} <= set(VALUES["pet"])
    assert all(len(t) == 4 for t in TEMPLATES.values()) and set(TEMPLATES) == set(ATTRIBUTES)


def test_entities_param_limits_the_people_asked_about() -> None:
    task = Knowledge(0, {"heldout": 40, "attack_pool": 60}, entities=10)
    assert {_fact(i.key)[0] for s in SPLITS for i in task.split(s)} <= set(ENTITIES[:10])


@pytest.mark.parametrize(("text", "want"), [
    ("Brindlemoor", "Brindlemoor"), ("brindlemoor.", "Brindlemoor"),
    ("Rasses Neith lives in **Caskwell**.", "Caskwell"),
    ("Their favourite colour is blue.", "blue"), ("A hedgehog", "hedgehog"),
    ("I don't know.", "I don't know"), ("<reasoning>unfinished", None),
])
def test_extractor_handles_vendor_formatting(text: str, want: str | None) -> None:
    assert Knowledge(0, SIZES).extract(text) == want


def test_score_ignores_case() -> None:
    task = Knowledge(0, SIZES)
    item = task.split("heldout")[0]
    assert task.score(item.answer.upper(), item) == 1.0
    assert task.score("nothing", item) == 0.0 and task.score(None, item) == 0.0
    assert task.reference_model == "knowledge-ref" and task.reasoning_suffix is None


@pytest.mark.parametrize(("sizes", "params", "match"), [
    (SIZES, {"entities": 0}, "entities must be an integer from 1 to 200"),
    (SIZES, {"entities": 201}, "entities must be an integer from 1 to 200"),
    (SIZES, {"people": 3}, "unknown knowledge parameter 'people'"),
    ({"heldout": 120, "benign": 0}, {"entities": 10},
     r"heldout=120 but entities=10 has only 107 contents for heldout \(2 in every 3 of its "
     r"160\); lower heldout"),
    ({"heldout": 10, "attack_pool": 200}, {"entities": 10},
     r"attack_pool=200 but entities=10 has only 146 items left for it beyond heldout=10 and "
     r"benign=0 \(of 160\); lower attack_pool"),
])
def test_bad_params_are_clear_errors(sizes: dict[str, int], params: dict[str, object],
                                     match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TASKS.get("knowledge")(0, sizes, **params)
