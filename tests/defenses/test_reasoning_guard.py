"""``reasoning-guard`` through the real SDK clients: the reasoning block is absent (or
summarised) in plain and streamed answers; the final answer and its logprobs stay."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anthropic
import openai
import pytest

from extractbench.defenses import DefenseStack
from extractbench.defenses.reasoning_guard import ReasoningGuard
from extractbench.defenses.scripted import Scripted
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.types import Generation, TokenLogprob

KEY = "fake-rg-0-0b7d24e9"
WORKED = "<reasoning>47 + 38: 7 + 8 = 15, carry 1\n4 + 3 + 1 = 8</reasoning>\n85"
MSG = [{"role": "user", "content": "What is 47 + 38? Show your working."}]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread


@contextmanager
def server(model: TinyLM, guard: ReasoningGuard | None) -> Iterator[RunningServer]:
    stages = [Scripted(lambda _: WORKED)] + ([guard] if guard else [])
    app = create_app({"tiny": ServedModel("tiny", model)}, {KEY: "attacker-0"},
                     DefenseStack(stages))
    with RunningServer(app) as srv:
        yield srv


def test_unguarded_teacher_shows_its_reasoning(tiny_lm: TinyLM) -> None:
    with server(tiny_lm, None) as srv, openai.OpenAI(
            base_url=srv.openai_base_url, api_key=KEY, max_retries=0) as c:
        r = c.chat.completions.create(model="tiny", messages=MSG, max_tokens=80)  # type: ignore[arg-type]
    assert r.choices[0].message.content == WORKED


def test_strip_removes_the_block_and_its_logprobs(tiny_lm: TinyLM) -> None:
    with server(tiny_lm, ReasoningGuard(mode="strip")) as srv, openai.OpenAI(
            base_url=srv.openai_base_url, api_key=KEY, max_retries=0) as c:
        r = c.chat.completions.create(model="tiny", messages=MSG, max_tokens=80,  # type: ignore[arg-type]
                                      logprobs=True, top_logprobs=2)
        chunks = list(c.chat.completions.create(model="tiny", messages=MSG, max_tokens=80,  # type: ignore[arg-type]
                                                stream=True))
    choice = r.choices[0]
    assert choice.message.content == "85"
    assert choice.logprobs is not None and choice.logprobs.content is not None
    assert "".join(t.token for t in choice.logprobs.content) == "85"
    assert r.usage is not None and r.usage.completion_tokens == len(WORKED) + 1  # billed all
    streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert streamed == "85"


def test_summary_keeps_a_short_first_line(tiny_lm: TinyLM) -> None:
    with server(tiny_lm, ReasoningGuard(mode="summary", summary_chars=12)) as srv, \
            anthropic.Anthropic(base_url=srv.anthropic_base_url, api_key=KEY,
                                max_retries=0) as c:
        m = c.messages.create(model="tiny", max_tokens=80, messages=MSG)  # type: ignore[arg-type]
    text = "".join(b.text for b in m.content if b.type == "text")
    assert text == "<reasoning>47 + 38: 7 +... [1 more lines hidden]</reasoning>\n85"
    assert "carry" not in text


def test_unclosed_block_runs_to_the_end_and_text_without_a_block_is_untouched() -> None:
    guard = ReasoningGuard()
    cut = Generation("<reasoning>7 + 8 = 15, car", "length", 5, 30)
    assert guard.guard(cut).text == ""
    plain = Generation("85", "stop", 5, 3)
    assert guard.guard(plain) is plain


def test_logprobs_of_multibyte_tokens_inside_the_block_are_dropped() -> None:
    text = "<reasoning>é</reasoning>ok"
    raw = text.encode()
    lps = [TokenLogprob(chr(b), [b], -0.1, []) for b in raw]
    out = ReasoningGuard().guard(Generation(text, "stop", 3, len(raw), lps))
    assert out.text == "ok"
    assert out.logprobs is not None and bytes(b for t in out.logprobs for b in t.bytes) == b"ok"


def test_custom_tags_and_bad_params() -> None:
    g = ReasoningGuard(open_tag="<think>", close_tag="</think>")
    assert g.guard(Generation("<think>x</think> 5", "stop", 1, 1)).text == "5"
    with pytest.raises(ValueError, match="mode must be one of 'strip', 'summary'"):
        ReasoningGuard(mode="hide")
    with pytest.raises(ValueError, match="open_tag must be a non-empty string"):
        ReasoningGuard(open_tag="")
    with pytest.raises(ValueError, match="summary_chars must be an integer in \\[0, 1000\\]"):
        ReasoningGuard(summary_chars=-1)
