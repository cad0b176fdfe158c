"""The value rules: safe names, plain text, plain finite parameters, one-line messages."""

from __future__ import annotations

import datetime

import pytest

from extractbench.config.values import escape, first_unsafe_char, name_problem, params_problem


@pytest.mark.parametrize("name", ["reference", "tinylm-long", "q30", "gpt-6.1", "a_b", "A1",
                                  "x" * 40, "7"])
def test_names_people_use_are_fine(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "a\\b", "a..b", "a__b", "_a",
                                  "a_", "a.", "-a", "x" * 41, "a b", "ré", "a\nb", "a\x00",
                                  "a\u202eb", "a\u200bb"])
def test_names_that_break_file_names_or_cell_ids_are_not(name: str) -> None:
    problem = name_problem(name)
    assert problem is not None and "cannot be a name" in problem
    assert "\n" not in problem and "\u202e" not in problem and "\x00" not in problem


def test_control_and_bidi_characters_are_found_and_escaped() -> None:
    assert first_unsafe_char("plain text\twith a tab", allow="\t") is None
    assert first_unsafe_char("a\u2067b") == "\u2067"
    assert first_unsafe_char("line\nbreak") == "\n"
    assert escape("a\nb\u202ec\u200bd\x1b") == "a\\u000ab\\u202ec\\u200bd\\u001b"


@pytest.mark.parametrize(("params", "problem"), [
    ({"x": 1.5, "y": [1, "a", None, True], "z": {"k": -3}}, None),
    ({"x": float("inf")}, "x: .inf is not a finite number (use a finite number)"),
    ({"x": [0, float("nan")]}, "x.1: .nan is not a finite number (use a finite number)"),
    ({"x": {"y": -float("inf")}}, "x.y: -.inf is not a finite number (use a finite number)"),
    ({"x": 2**63}, "x: 9223372036854775808 does not fit in 64 bits (use a smaller number)"),
    ({"x": -(2**200)}, "x: a 201-bit number does not fit in 64 bits (use a smaller number)"),
    ({"x": datetime.date(2020, 1, 1)}, "x: a date is not allowed here (write a string, number, "
     "true/false, list or mapping; quote a date to make it a string)"),
    ({"x": b"raw"}, "x: a bytes is not allowed here (write a string, number, true/false, list or "
     "mapping; quote a date to make it a string)"),
    ({"x": {1: "a"}}, "x: the key 1 is not a string (quote it)"),
    ({"x": "a\u202eb"}, "x: contains the control character U+202E (remove it)"),
])
def test_plugin_parameters_are_plain_finite_data(params: dict[str, object],
                                                 problem: str | None) -> None:
    assert params_problem(params) == problem
