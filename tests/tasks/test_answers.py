from __future__ import annotations

import pytest

from extractbench.tasks.answers import clean, final_part, last_label, last_number, norm


@pytest.mark.parametrize(("text", "want"), [
    ("<reasoning>1 + 2 = 3</reasoning>\n3", "3"),
    ("<THINK>a</THINK> b <thinking>c</thinking> d", "b d"),
    ("plain", "plain"),
    ("<reasoning>never closed 3", None),
])
def test_final_part(text: str, want: str | None) -> None:
    got = final_part(text)
    assert (got if got is None else " ".join(got.split())) == want


@pytest.mark.parametrize(("text", "want"), [
    ("  **Paris**. ", "Paris"), ("The answer is: `42`!", "42"), ('"blue"', "blue"),
    ("Let me think.\n\nFinal answer: Lyon", "Lyon"), ("a   b", "a b"),
])
def test_clean(text: str, want: str) -> None:
    assert clean(text) == want
    assert norm(text) == want.casefold()


def test_last_number_and_label() -> None:
    assert last_number("1,234 then −5") == "-5"
    assert last_number("3.50 dollars") == "3.50"
    assert last_number("none") is None
    labels = ["tech", "tech support", "sales"]
    assert last_label("Send to Tech Support", labels) == "tech support"
    assert last_label("sales, or maybe tech", labels) == "tech"
    assert last_label("technology", labels) is None
