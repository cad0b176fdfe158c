"""``misinformation`` through the real Anthropic SDK: in-distribution prompts answered
truthfully, out-of-distribution prompts wrongly, with an audit event."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anthropic
import pytest

from extractbench.defenses import DefenseStack
from extractbench.defenses.misinformation import Misinformation
from extractbench.defenses.scripted import Scripted
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app

KEY = "fake-mi-0-3e5f7a9b"
TASK = {"family": "arithmetic", "params": {"digits": 2, "ops": ["+"]}, "n": 100}
IN_DIST = "What is 47 + 38? Answer with the number only."
OOD = "Please translate the following sentence into French: the cat sleeps."


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread


@contextmanager
def client(model: TinyLM, guard: Misinformation) -> Iterator[tuple[anthropic.Anthropic,
                                                                    DefenseStack]]:
    stack = DefenseStack([Scripted(lambda _: "85"), guard])
    app = create_app({"tiny": ServedModel("tiny", model)}, {KEY: "attacker-0"}, stack)
    with RunningServer(app) as srv, anthropic.Anthropic(
            base_url=srv.anthropic_base_url, api_key=KEY, max_retries=0) as c:
        yield c, stack


def ask(c: anthropic.Anthropic, prompt: str) -> str:
    m = c.messages.create(model="tiny", max_tokens=8, extra_body={"temperature": 0.0},
                          messages=[{"role": "user", "content": prompt}])
    return "".join(b.text for b in m.content if b.type == "text")


def test_reference_task_keeps_benign_answers_and_poisons_ood(tiny_lm: TinyLM) -> None:
    guard = Misinformation(reference_task=TASK, threshold=0.2)
    assert guard.reference_size == 100
    assert guard.score(IN_DIST) < 0.05 < 0.2 < guard.score(OOD)
    with client(tiny_lm, guard) as (c, stack):
        assert ask(c, IN_DIST) == "85"
        assert ask(c, "Calculate 12 + 64 and answer with the number only.") == "85"
        wrong = ask(c, OOD)
    assert wrong != "85" and len(wrong) == 2
    events = stack.audit.events(kind="degrade")
    assert len(events) == 1 and events[0].detail["distance"] > 0.2
    assert events[0].key_id == "attacker-0" and events[0].query_index == 2


def test_learn_first_takes_early_traffic_as_the_reference(tiny_lm: TinyLM) -> None:
    guard = Misinformation(learn_first=2, threshold=0.2)
    with client(tiny_lm, guard) as (c, _):
        assert ask(c, OOD) == "85"  # learning: answered truthfully, and now "benign"
        assert ask(c, IN_DIST) == "85"
        assert ask(c, OOD.replace("cat", "dog")) == "85"  # near a learned prompt
        assert ask(c, "Write a haiku about autumn leaves falling slowly.") != "85"
    assert guard.reference_size == 2


def test_reference_file_and_prompts_add_up(tmp_path: Path) -> None:
    f = tmp_path / "benign.txt"
    f.write_text("What is 1 + 2?\n\nWhat is 3 + 4?\n", encoding="utf-8")
    guard = Misinformation(reference_file=str(f), reference_prompts=["Hello there"])
    assert guard.reference_size == 3


@pytest.mark.parametrize(("params", "message"), [
    ({}, "no reference set"),
    ({"learn_first": 5, "threshold": 1.0}, "threshold must be a number in \\(0, 1\\)"),
    ({"reference_task": {"family": "nope"}}, "reference_task.family: unknown task 'nope'"),
    ({"reference_task": {"family": "arithmetic", "size": 3}}, "unknown field"),
    ({"reference_task": {"family": "arithmetic", "params": {"digits": 9}}},
     "reference_task.params: digits"),
    ({"reference_file": "/no/such/file.txt"}, "reference_file /no/such/file.txt: cannot read"),
    ({"reference_prompts": "What is 1 + 2?"}, "reference_prompts must be a list of strings"),
])
def test_bad_params(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Misinformation(**params)  # type: ignore[arg-type]
