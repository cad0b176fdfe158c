"""The reference endpoint through the real ``anthropic`` SDK (sync and async, streaming and not)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
import torch

from extractbench.defenses import Defense, DefenseStack, Rejection, RequestContext
from extractbench.reference import tokenizer
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.types import LogitsProcessor

KEY = "test-attacker-0-c0ffee"
LIMITED = "test-limited-0-beef42"
MUTE = "test-mute-0-1234ab"
KEYS = {KEY: "attacker-0", LIMITED: "limited-0", MUTE: "mute-0"}
MSG: list[Any] = [{"role": "user", "content": "What is 2+3?"}]
# This SDK version has no typed sampling arguments; older clients send them as plain fields.
GREEDY = {"temperature": 0}


class Gate(Defense):
    name = "test-gate"

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        if ctx.key_id == "limited-0":
            return Rejection.rate_limited("slow down", retry_after=2.5)
        return None


class Mute(Defense):
    """Forces end of text at once for the ``mute-0`` key."""

    name = "test-mute"

    def logits_processors(self, ctx: RequestContext) -> list[LogitsProcessor]:
        def proc(ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
            out = logits.clone()
            out[:, tokenizer.EOS] += 1000.0
            return out

        return [proc] if ctx.key_id == "mute-0" else []


@pytest.fixture(scope="module")
def stack() -> DefenseStack:
    return DefenseStack([Gate(), Mute()])


@pytest.fixture(scope="module")
def server(tiny_lm: TinyLM, stack: DefenseStack) -> Iterator[RunningServer]:
    app = create_app({"tiny": ServedModel("tiny", tiny_lm)}, KEYS, stack)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: intra-op threads only add contention
    try:
        with RunningServer(app) as srv:
            yield srv
    finally:
        torch.set_num_threads(threads)


def _client(server: RunningServer, key: str = KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=key, max_retries=0)


@pytest.fixture()
def client(server: RunningServer) -> Iterator[anthropic.Anthropic]:
    with _client(server) as c:
        yield c


def test_message_shape_and_usage(client: anthropic.Anthropic) -> None:
    r = client.messages.create(model="tiny", max_tokens=9, messages=MSG)
    assert r.type == "message" and r.role == "assistant" and r.model == "tiny"
    assert r.id.startswith("msg_")
    assert len(r.content) == 1 and r.content[0].type == "text"
    assert r.usage.input_tokens == len(MSG[0]["content"].encode()) + 2  # <bos> ... <sep>
    if r.stop_reason == "max_tokens":
        assert r.usage.output_tokens == 9
    else:
        assert r.stop_reason == "end_turn" and r.usage.output_tokens <= 9
    assert r.stop_sequence is None


def test_system_prompt_is_ignored_by_the_model(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model="tiny", max_tokens=12, messages=MSG, extra_body=GREEDY)
    with_system = client.messages.create(
        model="tiny",
        max_tokens=12,
        extra_body=GREEDY,
        system="You are a calculator.",
        messages=[
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": "What is 2+3?"}]},
        ],
    )
    assert plain.content == with_system.content
    assert plain.usage.input_tokens == with_system.usage.input_tokens


def test_stop_sequence(client: anthropic.Anthropic) -> None:
    full = client.messages.create(model="tiny", max_tokens=40, messages=MSG, extra_body=GREEDY)
    text = full.content[0].text  # type: ignore[union-attr]
    j, stop = next((i, c) for i, c in enumerate(text) if i > 0 and c.isascii()
                   and c not in text[:i])
    r = client.messages.create(
        model="tiny", max_tokens=40, messages=MSG, extra_body=GREEDY, stop_sequences=["\x00x", stop]
    )
    assert r.content[0].text == text[:j]  # type: ignore[union-attr]
    assert r.stop_reason == "stop_sequence" and r.stop_sequence == stop


def test_end_turn(server: RunningServer) -> None:
    with _client(server, MUTE) as c:
        r = c.messages.create(model="tiny", max_tokens=10, messages=MSG)
    assert r.content[0].text == ""  # type: ignore[union-attr]
    assert r.stop_reason == "end_turn" and r.usage.output_tokens == 1


def test_raw_stream_events(client: anthropic.Anthropic) -> None:
    whole = client.messages.create(model="tiny", max_tokens=12, messages=MSG, extra_body=GREEDY)
    with client.messages.create(
        model="tiny", max_tokens=12, messages=MSG, extra_body=GREEDY, stream=True
    ) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) <= {"content_block_delta"}
    deltas = [e for e in events if e.type == "content_block_delta"]
    text = "".join(e.delta.text for e in deltas if e.delta.type == "text_delta")
    assert text == whole.content[0].text  # type: ignore[union-attr]
    start, end = events[0], events[-2]
    assert start.type == "message_start" and end.type == "message_delta"
    assert start.message.usage.input_tokens == whole.usage.input_tokens
    assert end.usage.output_tokens == whole.usage.output_tokens
    assert end.delta.stop_reason == whole.stop_reason


def test_stream_helper_and_bearer_auth(server: RunningServer) -> None:
    with anthropic.Anthropic(
        base_url=server.anthropic_base_url, auth_token=KEY, max_retries=0
    ) as c, c.messages.stream(
        model="tiny", max_tokens=8, messages=MSG, stop_sequences=["\n"]
    ) as stream:
        final = stream.get_final_message()
        text = stream.get_final_text()
    assert final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason in ("end_turn", "max_tokens", "stop_sequence")


def test_async_client(server: RunningServer) -> None:
    async def main() -> tuple[str, str]:
        async with anthropic.AsyncAnthropic(
            base_url=server.anthropic_base_url, api_key=KEY, max_retries=0
        ) as c:
            r = await c.messages.create(model="tiny", max_tokens=8, messages=MSG, extra_body=GREEDY)
            async with c.messages.stream(
                model="tiny", max_tokens=8, messages=MSG, extra_body=GREEDY
            ) as stream:
                streamed = await stream.get_final_text()
            return r.content[0].text, streamed  # type: ignore[union-attr]

    whole, streamed = asyncio.run(main())
    assert whole == streamed


def test_models_list(client: anthropic.Anthropic) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["tiny"] and models.data[0].type == "model"


def test_wrong_key_is_401_and_not_echoed(server: RunningServer) -> None:
    with _client(server, "test-SECRET999") as c, pytest.raises(
        anthropic.AuthenticationError
    ) as err:
        c.messages.create(model="tiny", max_tokens=4, messages=MSG)
    assert err.value.response.json()["error"]["type"] == "authentication_error"
    assert "SECRET999" not in err.value.response.text
    r = httpx.post(f"{server.base_url}/v1/messages", json={})
    assert r.status_code == 401 and r.json()["type"] == "error"


def test_unknown_model_is_404(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.create(model="claude-nope", max_tokens=4, messages=MSG)
    assert err.value.response.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": 1.5},
        {"max_tokens": 0},
        {"top_p": -1},
        {"messages": []},
        {"messages": [{"role": "assistant", "content": "no user turn"}]},
    ],
)
def test_bad_params_are_400(client: anthropic.Anthropic, bad: dict[str, Any]) -> None:
    sampling = {k: bad.pop(k) for k in ("temperature", "top_p") if k in bad}
    kw: dict[str, Any] = {"model": "tiny", "max_tokens": 4, "messages": MSG, **bad}
    kw["extra_body"] = sampling
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(**kw)
    body = err.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert KEY not in err.value.response.text


def test_missing_max_tokens_is_400(server: RunningServer) -> None:
    r = httpx.post(
        f"{server.base_url}/v1/messages",
        json={"model": "tiny", "messages": MSG},
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 400
    assert r.json()["error"] == {"type": "invalid_request_error",
                                 "message": "max_tokens: Field required"}


def test_rejection_is_429_with_retry_after(server: RunningServer, stack: DefenseStack) -> None:
    with _client(server, LIMITED) as c, pytest.raises(anthropic.RateLimitError) as err:
        c.messages.create(model="tiny", max_tokens=4, messages=MSG)
    assert err.value.response.headers["retry-after"] == "3"
    assert err.value.response.headers["retry-after-ms"] == "2500"
    assert err.value.response.json()["error"]["type"] == "rate_limit_error"
    assert LIMITED not in err.value.response.text
    assert stack.audit.events(key_id="limited-0", kind="reject")


def test_count_tokens_matches_usage(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model="tiny", messages=MSG, system="ignored")
    used = client.messages.create(model="tiny", max_tokens=2, messages=MSG)
    assert counted.input_tokens == used.usage.input_tokens
