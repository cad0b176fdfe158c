from __future__ import annotations

import re

import pytest

from extractbench.tasks import SPLITS, TASKS
from extractbench.tasks.arithmetic import (
    REASONING_SUFFIX,
    TEMPLATES,
    Arithmetic,
    answer_of,
    canonical,
    columns,
    parse,
    steps,
    wants_reasoning,
    worked,
)

SIZES = {"attack_pool": 2000, "heldout": 300, "benign": 200}


@pytest.mark.parametrize(("params", "sizes"), [
    ({"digits": 2, "ops": ["+", "-"]}, SIZES),
    ({"digits": 2, "ops": ["+", "-"], "terms": 3}, SIZES),  # sampled, not enumerated
    # enumerated; 4,000 problems, but commuted variants make fewer contents
    ({"digits": 1, "ops": ["+", "*"], "terms": 3},
     {"attack_pool": 1000, "heldout": 300, "benign": 200}),
])
def test_splits_disjoint_by_content(params: dict[str, object], sizes: dict[str, int]) -> None:
    task = TASKS.get("arithmetic")(0, sizes, **params)
    assert {s: len(task.split(s)) for s in SPLITS} == sizes
    keys = {s: [i.key for i in task.split(s)] for s in SPLITS}
    # held-out and benign: one item per content; the pool: every variant of its contents
    assert len(set(keys["heldout"])) == sizes["heldout"]
    assert len(set(keys["benign"])) == sizes["benign"]
    assert len({i.prompt for i in task.split("attack_pool")}) == sizes["attack_pool"]
    assert not set(keys["heldout"]) & set(keys["attack_pool"])
    assert not set(keys["heldout"]) & set(keys["benign"])
    assert not set(keys["benign"]) & set(keys["attack_pool"])


def test_seed_changes_split_and_is_reproducible() -> None:
    a = Arithmetic(0, SIZES)
    assert a.split("heldout") == Arithmetic(0, SIZES).split("heldout")
    assert a.split("heldout") != Arithmetic(1, SIZES).split("heldout")
    b = Arithmetic(0, SIZES, ops=["+", "-"], terms=3)
    assert b.split("heldout") == Arithmetic(0, SIZES, ops=["+", "-"], terms=3).split("heldout")


def test_two_term_prompts_keep_their_wording() -> None:
    """The default problems keep the original templates; the key is the canonical problem."""
    task = Arithmetic(0, SIZES)
    for split in SPLITS:
        for item in task.split(split):
            a, b = map(int, re.findall(r"\d+", item.prompt))
            assert item.prompt in {t.format(expr=f"{a} + {b}") for t in TEMPLATES}
            assert item.key == f"{min(a, b)}+{max(a, b)}" and item.answer == str(a + b)
    assert {t for t in TEMPLATES
            if any(i.prompt.startswith(t[:8]) for i in task.split("heldout"))} == set(TEMPLATES)


def test_answers_are_correct() -> None:
    for item in Arithmetic(3, SIZES, ops=["+", "-", "*"]).split("heldout"):
        a, b = (int(x) for x in item.key.replace("+", " ").replace("-", " ")
                .replace("*", " ").split())
        op = next(c for c in "+-*" if c in item.key)
        assert int(item.answer) == {"+": a + b, "-": a - b, "*": a * b}[op]
        assert str(a) in item.prompt and str(b) in item.prompt


def test_column_working_spells_out_the_result() -> None:
    for x in range(0, 130, 7):
        for y in range(0, x + 1, 3):
            for op, want in (("+", x + y), ("-", x - y)):
                cols = columns(x, op, y)
                digits = [int(c.rsplit("=", 1)[1]) % 10 for c in cols]
                assert int("".join(map(str, reversed(digits)))) % 10 ** len(cols) == \
                    want % 10 ** len(cols)
    assert columns(12, "*", 3) == []


def test_multi_step_answers_follow_precedence_and_stay_non_negative() -> None:
    assert answer_of((4, 38, 12), ("+", "*")) == 460
    assert [s[3] for s in steps((4, 38, 12), ("+", "*"))] == [456, 460]
    task = Arithmetic(5, SIZES, digits=2, ops=["+", "-", "*"], terms=3)
    for item in task.split("attack_pool"):
        (expr,) = re.findall(r"\d[\d +*-]*\d", item.prompt)
        assert int(item.answer) == eval(expr) == eval(item.key) >= 0
        assert canonical(*parse(expr)) == item.key


def test_worked_answer_format_and_extraction() -> None:
    assert worked((47, 38), ("+",)) == "<reasoning>7+8=15; 4+3+1=8; 47 + 38 = 85</reasoning>\n85"
    assert worked((47, 38), ("-",)) == ("<reasoning>7-8 borrow 17-8=9; 4-1-3=0; 47 - 38 = 9"
                                        "</reasoning>\n9")
    text = worked((47, 38, 12), ("+", "-"))
    assert text == ("<reasoning>7+8=15; 4+3+1=8; 47 + 38 = 85 | 5-2=3; 8-1=7; 85 - 12 = 73"
                    "</reasoning>\n73")
    task = Arithmetic(0, SIZES, ops=["+", "-"], terms=3)
    assert task.extract(text) == "73"
    assert task.reasoning_suffix == REASONING_SUFFIX
    assert wants_reasoning("What is 1 + 2? Answer with the number only." + REASONING_SUFFIX)
    assert not wants_reasoning("What is 1 + 2? Answer with the number only.")


def test_room_for_answers_and_working() -> None:
    task = Arithmetic(0, SIZES, digits=3, ops=["+", "-"], terms=3)
    longest = max(len(worked(*_parse(i.key))) for i in task.split("attack_pool"))
    assert longest <= task.reasoning_max_tokens
    assert max(len(i.answer) for i in task.split("attack_pool")) < task.max_answer_tokens
    assert task.reference_model == "arith-cot-ref"


def _parse(key: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
    return (tuple(int(x) for x in re.findall(r"\d+", key)), tuple(re.findall(r"[-+*]", key)))


@pytest.mark.parametrize(("text", "want"), [
    ("85", "85"), ("The answer is 85.", "85"), ("47 + 38 = 85", "85"),
    ("**1,234**", "1234"), ("−12", "-12"), ("no idea", None),
    ("<reasoning>47 + 38 = 85</reasoning>\n85", "85"),
    ("<reasoning>47 + 38 = 85; 85 - 12 = 73", None),  # cut off inside the working
    ("<think>7+8=15, carry 1</think>Final answer: **85**", "85"),
    ("Step 1: 47 + 38 = 85.\nStep 2: 85 - 12 = 73.\n\nAnswer: 73", "73"),
])
def test_extractor_handles_vendor_formatting(text: str, want: str | None) -> None:
    assert Arithmetic(0, SIZES).extract(text) == want


def test_score() -> None:
    task = Arithmetic(0, SIZES)
    item = task.split("heldout")[0]
    assert task.score(item.answer, item) == 1.0
    assert task.score(item.answer + ".0", item) == 1.0
    assert task.score(str(int(item.answer) + 1), item) == 0.0
    assert task.score(None, item) == 0.0


def test_too_many_items_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"attack_pool=1000000 but digits=1, ops=\['\+'\], "
                                         r"terms=2 has only 100 items left .*lower attack_pool"):
        Arithmetic(0, {"attack_pool": 10**6}, digits=1)
    with pytest.raises(ValueError, match=r"heldout=50 but .* has only 37 contents for heldout "
                                         r"\(2 in every 3 of its 55\); lower heldout"):
        Arithmetic(0, {"heldout": 50}, digits=1)
    with pytest.raises(ValueError, match=r"terms=3 has only 729000 items, .* lower attack_pool"):
        Arithmetic(0, {"attack_pool": 10**6}, digits=2, terms=3)


@pytest.mark.parametrize(("params", "match"), [
    ({"digits": 5}, "digits must be an integer from 1 to 4"),
    ({"terms": 1}, "terms must be an integer from 2 to 4"),
    ({"ops": ["/"]}, "ops must be a non-empty list"),
    ({"ops": "+"}, "ops must be a non-empty list"),
    ({"ops": []}, "ops must be a non-empty list"),
    ({"digts": 2}, "unknown arithmetic parameter 'digts'"),
])
def test_bad_params_are_clear_errors(params: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TASKS.get("arithmetic")(0, SIZES, **params)
