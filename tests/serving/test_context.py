"""Prompts the served model would not read whole are refused with the vendor's context-length
error (through the official SDKs), before the defenses count them as queries.

The test model reads at most 96 prompt tokens (``<bos>``, the bytes, ``<sep>``) of a 160-token
context. Default (lenient): prompts up to ``max_prompt_tokens`` are read by their tail and
``max_tokens`` is cut to the room left; ``strict_context``: what does not fit is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from extractbench.defenses import Defense, DefenseStack, Rejection, RequestContext
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app

KEY = "fake-context-0-77aa01"


class Recorder(Defense):
    name = "test-recorder"

    def __init__(self) -> None:
        self.seen: list[RequestContext] = []

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        self.seen.append(ctx)
        return None


def _message(exc: openai.APIStatusError) -> str:
    message: str = exc.response.json()["error"]["message"]  # the SDK prefixes its own
    return message


def _user(n_bytes: int) -> list[Any]:
    return [{"role": "user", "content": "a" * n_bytes}]  # n_bytes + 2 tokens


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def server(tiny_lm: TinyLM, recorder: Recorder) -> Iterator[RunningServer]:
    models = {"tiny": ServedModel("tiny", tiny_lm, max_prompt_tokens=300),
              "strict": ServedModel("strict", tiny_lm, strict_context=True)}
    with RunningServer(create_app(models, {KEY: "attacker-0"},
                                  DefenseStack([recorder]))) as srv:
        yield srv


@pytest.fixture()
def oa(server: RunningServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.openai_base_url, api_key=KEY, max_retries=0) as c:
        yield c


@pytest.fixture()
def an(server: RunningServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=KEY,
                             max_retries=0) as c:
        yield c


def test_the_served_model_says_its_limits(tiny_lm: TinyLM) -> None:
    lenient, strict = ServedModel("a", tiny_lm), ServedModel("b", tiny_lm, strict_context=True)
    assert (lenient.context_tokens, lenient.prompt_window) == (160, 96)
    assert lenient.max_prompt_tokens == 1024 and strict.max_prompt_tokens == 96
    assert lenient.input_tokens("é" * 50_000_000) == 100_000_002  # counted, not tokenized
    assert lenient.read_tokens("a" * 500) == 96  # what it reads
    assert lenient.input_tokens("a" * 500) == 502  # what usage reports and a vendor bills


def test_a_prompt_over_the_limit_is_context_length_exceeded_for_openai(
        oa: openai.OpenAI, recorder: Recorder) -> None:
    before = len(recorder.seen)
    with pytest.raises(openai.BadRequestError) as err:
        oa.chat.completions.create(model="tiny", messages=_user(400), max_tokens=2)
    assert err.value.code == "context_length_exceeded"
    assert err.value.type == "invalid_request_error" and err.value.param == "messages"
    assert _message(err.value) == (
        "This model's maximum context length is 300 tokens. However, your messages resulted "
        "in 402 tokens. Please reduce the length of the messages.")
    with pytest.raises(openai.BadRequestError) as err:
        oa.completions.create(model="tiny", prompt="a" * 400, max_tokens=5)
    assert err.value.code == "context_length_exceeded"
    assert _message(err.value) == (
        "This model's maximum context length is 300 tokens, however you requested 407 tokens "
        "(402 in your prompt; 5 for the completion). Please reduce your prompt; or completion "
        "length.")
    assert len(recorder.seen) == before  # refused before the defenses saw a query


def test_a_prompt_over_the_limit_is_prompt_too_long_for_anthropic(
        an: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as err:
        an.messages.create(model="tiny", max_tokens=2, messages=_user(400))
    assert err.value.response.json()["error"] == {
        "type": "invalid_request_error", "message": "prompt is too long: 402 tokens > 300 maximum"}
    with pytest.raises(anthropic.BadRequestError):
        an.messages.count_tokens(model="tiny", messages=_user(400))


def test_the_50_mb_prompt_of_the_audit_is_refused_by_size(server: RunningServer) -> None:
    with openai.OpenAI(base_url=server.openai_base_url, api_key=KEY, max_retries=0) as c, \
            pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="tiny", messages=_user(50_000_000), max_tokens=2)
    assert err.value.status_code == 413


def test_lenient_a_longer_prompt_is_read_by_its_tail_and_billed_whole(
        oa: openai.OpenAI, an: anthropic.Anthropic) -> None:
    r = oa.chat.completions.create(model="tiny", messages=_user(200), max_tokens=500)
    assert r.usage is not None and r.usage.prompt_tokens == 202  # every token sent
    assert r.usage.completion_tokens <= 160 - 96  # max_tokens cut to the room left
    m = an.messages.create(model="tiny", max_tokens=500, messages=_user(200))
    assert m.usage.input_tokens == 202
    assert an.messages.count_tokens(model="tiny", messages=_user(200)).input_tokens == 202
    tail = oa.chat.completions.create(model="tiny", messages=[
        {"role": "user", "content": "z" * 150 + "a" * 100}], max_tokens=8, temperature=0)
    same = oa.chat.completions.create(model="tiny", messages=[
        {"role": "user", "content": "y" * 150 + "a" * 100}], max_tokens=8, temperature=0)
    assert tail.choices[0].message.content == same.choices[0].message.content  # tail only


def test_strict_a_prompt_longer_than_the_model_reads_is_refused(
        oa: openai.OpenAI, an: anthropic.Anthropic) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        oa.chat.completions.create(model="strict", messages=_user(95), max_tokens=1)
    assert err.value.code == "context_length_exceeded"
    assert "maximum context length is 96 tokens" in _message(err.value)
    assert "resulted in 97 tokens" in _message(err.value)
    with pytest.raises(anthropic.BadRequestError) as aerr:
        an.messages.create(model="strict", max_tokens=1, messages=_user(95))
    assert aerr.value.response.json()["error"]["message"] == (
        "prompt is too long: 97 tokens > 96 maximum")
    ok = oa.chat.completions.create(model="strict", messages=_user(94), max_tokens=1)
    assert ok.usage is not None and ok.usage.prompt_tokens == 96


def test_strict_prompt_plus_max_tokens_over_the_context_is_refused(
        oa: openai.OpenAI, an: anthropic.Anthropic) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        oa.chat.completions.create(model="strict", messages=_user(50), max_tokens=120)
    assert err.value.code == "context_length_exceeded"
    assert _message(err.value) == (
        "This model's maximum context length is 160 tokens. However, you requested 172 tokens "
        "(52 in the messages, 120 in the completion). Please reduce the length of the messages "
        "or completion.")
    with pytest.raises(anthropic.BadRequestError) as aerr:
        an.messages.create(model="strict", max_tokens=120, messages=_user(50))
    assert aerr.value.response.json()["error"]["message"] == (
        "input length and `max_tokens` exceed context limit: 52 + 120 > 160, decrease input "
        "length or `max_tokens` and try again")
    fits = oa.chat.completions.create(model="strict", messages=_user(50), max_tokens=108)
    assert fits.choices[0].finish_reason in ("stop", "length")
    unset = oa.chat.completions.create(model="strict", messages=_user(50))  # the room left
    assert unset.usage is not None and unset.usage.completion_tokens <= 108
