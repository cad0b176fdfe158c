"""The ``tinylm`` student: text, reasoning traces and logprob soft labels."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch

from extractbench.reference import tokenizer
from extractbench.students import STUDENTS, TrainPair
from extractbench.students.tinylm import TinyLMStudent, soft_labels

FAST = {"d_model": 32, "n_layers": 1, "n_heads": 2, "batch_size": 16, "lr": 1e-2,
        "steps": 80}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_soft_labels_line_up_with_response_bytes() -> None:
    pair = TrainPair("q", "12", [[("1", -0.1), ("7", -2.5)], [("2", -0.2), ("3", -1.9)]])
    assert soft_labels(pair) == (((49, -0.1), (55, -2.5)), ((50, -0.2), (51, -1.9)))
    assert soft_labels(TrainPair("q", "12", None)) is None
    assert soft_labels(TrainPair("q", "12", [[("12", -0.1)]])) is None  # a multi-byte token
    assert soft_labels(TrainPair("q", "123", pair.top_logprobs)) is None  # length differs


def test_base_recipe_trains_nothing() -> None:
    student = STUDENTS.get("tinylm")(**FAST)
    report = student.fit([], seed=0)
    assert report.steps == 0 and report.examples == 0
    assert len(student.predict(["What is 1 + 1?"], 4)) == 1


def test_learns_a_reasoning_trace_and_gets_room_to_reason() -> None:
    trace = "<reasoning>47 + 38 = 85; 85 - 12 = 73; 73 + 10 = 83</reasoning>\n83"
    pairs = [TrainPair("What is 47 + 38 - 12 + 10?", trace)] * 4
    student = TinyLMStudent(**{**FAST, "steps": 150})
    student.fit(pairs, seed=0)
    # asked for a 6-token answer, it still writes out the whole trace before the answer
    assert student.predict(["What is 47 + 38 - 12 + 10?"], 6) == [trace]


def test_context_grows_for_long_traces() -> None:
    long = "step; " * 40 + "\n7"
    report = TinyLMStudent(**{**FAST, "steps": 1}).fit(
        [TrainPair("q", long)], seed=0)
    assert report.details["max_len"] > 160


def test_kd_uses_harvested_logprobs_only_when_enabled() -> None:
    top = [[("A", math.log(0.6)), ("B", math.log(0.4))]]
    pairs = [TrainPair("pick one", "A", top)] * 8
    kd = TinyLMStudent(**FAST)
    assert kd.fit(pairs, seed=0).details["soft_pairs"] == 8
    text = TinyLMStudent(**{**FAST, "kd_weight": 0.0})
    assert text.fit(pairs, seed=0).details["soft_pairs"] == 0
    probs = {}
    for name, s in (("kd", kd), ("text", text)):
        assert s.model is not None
        ids = torch.tensor([tokenizer.prompt_ids("pick one", s.model.cfg.max_prompt)])
        with torch.no_grad():
            probs[name] = torch.softmax(s.model(ids)[0, -1], -1)[ord("B")].item()
    assert probs["kd"] > 0.1 > 0.02 > probs["text"]


def test_bad_params_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="tinylm: kd_weight"):
        TinyLMStudent(kd_weight=2.0)
    with pytest.raises(ValueError, match="tinylm: d_model"):
        TinyLMStudent(d_model=30, n_heads=4)


def test_compute_is_fixed_per_recipe_not_by_the_harvest_size() -> None:
    """The audit: q30/q300/q1000/q3000 trained 50/117/390/800 steps, so the curve measured
    compute. Now every harvest size gets the recipe's steps, and the report says what they
    cost: target tokens are the response bytes plus <eos>, batch_size of them per step."""
    small = [TrainPair(f"What is {i} + 1?", str(i + 1)) for i in range(10, 20)]
    large = [TrainPair(f"What is {i} + 1?", str(i + 1)) for i in range(10, 90)]
    a = TinyLMStudent(**{**FAST, "steps": 30}).fit(small, seed=0)
    b = TinyLMStudent(**{**FAST, "steps": 30}).fit(large, seed=0)
    assert a.steps == b.steps == 30
    assert a.tokens_seen == b.tokens_seen == 30 * FAST["batch_size"] * (2 + 1)  # "11".."90"
    assert a.final_loss is not None and b.final_loss is not None


def test_a_run_says_whether_it_converged() -> None:
    pairs = [TrainPair("What is 2 + 2?", "4")] * 8
    short = TinyLMStudent(**{**FAST, "steps": 20, "lr": 1e-3}).fit(pairs, seed=0)
    long = TinyLMStudent(**{**FAST, "steps": 300}).fit(pairs, seed=0)
    assert short.converged is False  # still falling fast
    assert long.converged is True and long.final_loss is not None and long.final_loss < 0.05
    assert TinyLMStudent(**FAST).fit([], seed=0).converged is None


def test_early_stop_holds_back_a_tenth_of_the_harvest_and_stops_on_a_plateau() -> None:
    pairs = [TrainPair(f"What is {i % 5} + 0?", str(i % 5)) for i in range(40)]
    report = TinyLMStudent(**{**FAST, "steps": 2000, "early_stop": True}).fit(pairs, seed=0)
    assert report.details["held_back"] == 4
    assert report.steps < 2000 and report.steps % 50 == 0 and report.converged is True
    few = TinyLMStudent(**{**FAST, "steps": 60, "early_stop": True}).fit(pairs[:10], seed=0)
    assert few.details["held_back"] == 0 and few.steps == 60  # too few pairs to hold back


def test_the_old_schedule_parameters_are_refused_with_the_fix() -> None:
    problems = STUDENTS.entry("tinylm").validate_params({"epochs": 25, "max_steps": 800},
                                                        "students.s.params")
    assert problems == ["students.s.params.epochs: was removed: training length no longer "
                        "follows the harvest size; give steps: N (fixed optimiser steps)"]
