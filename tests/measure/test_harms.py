"""Every harm counted (issue 14): a defense that takes something away from a request records
it, and a benign key any defense acted on counts as harmed, not only a flagged one. Through
the real server and the real OpenAI SDK."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import openai
import pytest

from extractbench.defenses import AuditEvent, DefenseStack
from extractbench.defenses.base import Defense
from extractbench.defenses.logprob_guard import LogprobGuard
from extractbench.defenses.reasoning_guard import ReasoningGuard
from extractbench.defenses.scripted import Scripted
from extractbench.measure.detection import harmed_keys, harms, summarize
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app

KEYS = {"fake-harm-0-1f3a": "benign-0", "fake-harm-1-77c2": "benign-1"}
MSG = [{"role": "user", "content": "What is 47 + 38? Show your working."}]
WORKED = "<reasoning>7 + 8 = 15, carry 1</reasoning>\n85"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread


@contextmanager
def served(model: TinyLM, *stages: Defense) -> Iterator[tuple[DefenseStack,
                                                             dict[str, openai.OpenAI]]]:
    stack = DefenseStack(list(stages))
    app = create_app({"tiny": ServedModel("tiny", model)}, KEYS, stack)
    with RunningServer(app) as srv:
        clients = {kid: openai.OpenAI(base_url=srv.openai_base_url, api_key=key, max_retries=0)
                   for key, kid in KEYS.items()}
        try:
            yield stack, clients
        finally:
            for c in clients.values():
                c.close()


def kinds(events: list[AuditEvent]) -> list[tuple[str, str, object]]:
    return [(e.key_id, e.kind, e.detail.get("removed")) for e in events]


def test_logprobs_taken_from_a_user_who_asked_for_them_is_a_harm(tiny_lm: TinyLM) -> None:
    with served(tiny_lm, LogprobGuard(hide=True)) as (stack, c):
        c["benign-0"].chat.completions.create(model="tiny", messages=MSG, max_tokens=4,  # type: ignore[arg-type]
                                              logprobs=True)
        c["benign-1"].chat.completions.create(model="tiny", messages=MSG, max_tokens=4)  # type: ignore[arg-type]
        events = stack.audit.events()
    # only the user who asked lost something
    assert kinds(events) == [("benign-0", "transform", "logprobs")]
    assert harmed_keys(events, ["benign-0", "benign-1"]) == {"benign-0"}


def test_reasoning_stripped_from_an_answer_is_a_harm(tiny_lm: TinyLM) -> None:
    answers = iter([WORKED, "85"])  # the second answer has no reasoning to take away
    with served(tiny_lm, Scripted(lambda _: next(answers)), ReasoningGuard(mode="strip")) as (
            stack, c):
        for kid in ("benign-0", "benign-1"):
            c[kid].chat.completions.create(model="tiny", messages=MSG, max_tokens=80)  # type: ignore[arg-type]
        events = stack.audit.events()
    assert kinds(events) == [("benign-0", "transform", "reasoning")]


def test_the_harmed_key_rate_counts_every_action_and_the_fpr_only_flags() -> None:
    def event(key: str, kind: str) -> AuditEvent:
        return AuditEvent(key, 1.0, 0, "d", kind, {})  # type: ignore[arg-type]

    benign = ["benign-0", "benign-1", "benign-2", "benign-3"]
    events = [event("benign-0", "reject"), event("benign-0", "reject"),
              event("benign-1", "degrade"), event("benign-2", "flag"),
              event("benign-3", "note"), event("attacker-0", "flag")]
    summary = summarize(events, [], benign)
    # a note is no action; the attacker's flag is not a benign harm
    assert (summary.fpr, summary.harmed_rate) == (0.25, 0.75)
    assert summary.benign_harmed_keys == 3
    assert summary.benign_harms == harms(events, benign) == {"reject": 2, "degrade": 1,
                                                             "flag": 1}
