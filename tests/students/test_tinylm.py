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
        "min_steps": 80, "max_steps": 80}


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
    student = TinyLMStudent(**{**FAST, "min_steps": 150, "max_steps": 150})
    student.fit(pairs, seed=0)
    # asked for a 6-token answer, it still writes out the whole trace before the answer
    assert student.predict(["What is 47 + 38 - 12 + 10?"], 6) == [trace]


def test_context_grows_for_long_traces() -> None:
    long = "step; " * 40 + "\n7"
    report = TinyLMStudent(**{**FAST, "min_steps": 1, "max_steps": 1}).fit(
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
