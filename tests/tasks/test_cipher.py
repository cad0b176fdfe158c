from __future__ import annotations

import string

import pytest

from extractbench.tasks import SPLITS, TASKS
from extractbench.tasks.cipher import KEY, TEMPLATES, Cipher, encode

SIZES = {"attack_pool": 3000, "heldout": 300, "benign": 200}


def test_splits_disjoint_by_content() -> None:
    task = TASKS.get("cipher")(0, SIZES)
    keys = {s: [i.key for i in task.split(s)] for s in SPLITS}
    assert {s: len(set(k)) for s, k in keys.items()} == SIZES
    assert not set(keys["heldout"]) & set(keys["attack_pool"])
    assert not set(keys["heldout"]) & set(keys["benign"])
    assert not set(keys["benign"]) & set(keys["attack_pool"])


def test_seed_reproducible_and_changes_split() -> None:
    assert Cipher(0, SIZES).split("heldout") == Cipher(0, SIZES).split("heldout")
    assert Cipher(0, SIZES).split("heldout") != Cipher(1, SIZES).split("heldout")


def test_rule_is_a_secret_permutation_applied_to_every_letter() -> None:
    assert sorted(KEY) == sorted(KEY.values()) == list(string.ascii_lowercase)
    assert sum(k == v for k, v in KEY.items()) < 5  # not close to the identity
    task = Cipher(2, SIZES, min_len=3, max_len=8)
    for item in task.split("heldout"):
        assert 3 <= len(item.key) <= 8 and item.key.isalpha()
        assert f"'{item.key}'" in item.prompt
        assert item.answer == "".join(KEY[c] for c in item.key)
    assert {i.prompt.replace(i.key, "{w}") for i in task.split("attack_pool")} == set(TEMPLATES)


@pytest.mark.parametrize(("text", "want"), [
    ("xqzt", "xqzt"), ("xqzt.", "xqzt"), ("**xqzt**", "xqzt"), ("'xqzt'", "xqzt"),
    ("The encoded word is: `Xqzt`", "xqzt"), ("Ciphertext: xqzt", "xqzt"),
    ("<reasoning>t->x</reasoning> xqzt", "xqzt"), ("", None), ("123", None),
])
def test_extractor_handles_vendor_formatting(text: str, want: str | None) -> None:
    assert Cipher(0, SIZES).extract(text) == want


def test_score_needs_the_exact_word() -> None:
    task = Cipher(0, SIZES)
    item = task.split("heldout")[0]
    assert task.score(task.extract(f"**{item.answer}**"), item) == 1.0
    assert task.score(item.answer[:-1], item) == 0.0
    assert task.score(None, item) == 0.0
    assert encode(item.key) == item.answer
    assert task.reference_model == "cipher-ref" and task.reasoning_suffix is None
    assert task.max_answer_tokens > max(len(i.answer) for i in task.split("attack_pool"))


@pytest.mark.parametrize(("params", "match"), [
    ({"min_len": 2}, "min_len must be an integer from 3 to 8"),
    ({"max_len": 9}, "max_len must be an integer from 3 to 8"),
    ({"min_len": 7, "max_len": 5}, "min_len .7. must be <= max_len .5."),
    ({"rule": "rot13"}, "unknown cipher parameter 'rule'"),
])
def test_bad_params_are_clear_errors(params: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TASKS.get("cipher")(0, SIZES, **params)


def test_too_small_a_space_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="has only"):
        Cipher(0, {"attack_pool": 30000}, min_len=3, max_len=3)
