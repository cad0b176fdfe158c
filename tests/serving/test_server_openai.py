"""The reference endpoint through the real ``openai`` SDK (sync and async, streaming and not)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import openai
import pytest
import torch

from extractbench.defenses import AuditLog, Defense, DefenseStack, Rejection, RequestContext
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.types import Generation, LogitsProcessor, SamplingParams

KEY = "fake-attacker-0-7f3a9c"
LIMITED = "fake-limited-0-d41e77"
REDACT = "fake-redact-0-90ab12"
FORCED = "fake-forced-0-55cd34"
KEYS = {KEY: "attacker-0", LIMITED: "limited-0", REDACT: "redact-0", FORCED: "forced-0"}
MSG = [{"role": "user", "content": "What is 2+3?"}]


class Gate(Defense):
    name = "test-gate"

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        if ctx.key_id == "limited-0":
            return Rejection.rate_limited("slow down", retry_after=7)
        return None


class ForceZ(Defense):
    name = "test-force"

    def logits_processors(self, ctx: RequestContext) -> list[LogitsProcessor]:
        def proc(ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
            out = logits.clone()
            out[:, ord("Z")] += 1000.0
            return out

        return [proc] if ctx.key_id == "forced-0" else []


class Redact(Defense):
    name = "test-redact"

    def transform(self, ctx: RequestContext, generations: list[Generation]) -> list[Generation]:
        if ctx.key_id != "redact-0":
            return generations
        return [replace(g, text="[redacted]", logprobs=None) for g in generations]


class Recorder(Defense):
    name = "test-recorder"

    def __init__(self) -> None:
        self.seen: list[RequestContext] = []

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        self.seen.append(ctx)
        return None


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def stack(recorder: Recorder) -> DefenseStack:
    return DefenseStack([recorder, Gate(), ForceZ(), Redact()])


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


@pytest.fixture()
def client(server: RunningServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.openai_base_url, api_key=KEY, max_retries=0) as c:
        yield c


def _client(server: RunningServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key=key, max_retries=0)


def test_chat_shape_usage_and_logprobs(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="tiny", messages=MSG, max_tokens=12, logprobs=True, top_logprobs=5, seed=1
    )
    assert r.object == "chat.completion" and r.model == "tiny" and len(r.choices) == 1
    choice = r.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    assert choice.logprobs is not None and choice.logprobs.content is not None
    content = choice.logprobs.content
    eos = 1 if choice.finish_reason == "stop" else 0
    assert r.usage is not None
    assert r.usage.completion_tokens == len(content) + eos <= 12
    assert r.usage.prompt_tokens == len(MSG[0]["content"].encode()) + 2  # <bos> ... <sep>
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    raw = bytes(b for t in content for b in t.bytes or [])
    assert raw.decode("utf-8", errors="replace") == choice.message.content
    for tok in content:
        assert len(tok.top_logprobs) == 5
        tops = [t.logprob for t in tok.top_logprobs]
        assert tops == sorted(tops, reverse=True)
        assert tok.logprob <= tops[0] + 1e-6
        same = [t for t in tok.top_logprobs if t.token == tok.token]
        if same:
            assert same[0].logprob == pytest.approx(tok.logprob)


def test_greedy_chosen_token_is_top(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="tiny", messages=MSG, max_tokens=8, temperature=0, logprobs=True, top_logprobs=3
    )
    content = r.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content
    for tok in content:
        assert tok.token == tok.top_logprobs[0].token
        assert tok.logprob == pytest.approx(tok.top_logprobs[0].logprob)


def test_logprobs_off_by_default(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=4)
    assert r.choices[0].logprobs is None


def test_seed_determinism_and_n(client: openai.OpenAI) -> None:
    def text(seed: int, n: int = 1) -> list[str]:
        r = client.chat.completions.create(
            model="tiny", messages=MSG, max_tokens=16, seed=seed, n=n
        )
        return [c.message.content or "" for c in r.choices]

    assert text(5) == text(5)
    assert text(5) != text(6)
    three = text(5, n=3)
    assert len(three) == 3 and len(set(three)) == 3
    assert three == text(5) + text(6) + text(7)  # sample i uses seed + i


def test_stop_sequence_cuts_text(client: openai.OpenAI) -> None:
    full = client.chat.completions.create(
        model="tiny", messages=MSG, max_tokens=40, temperature=0
    ).choices[0].message.content or ""
    j, stop = next((i, c) for i, c in enumerate(full) if i > 0 and c.isascii()
                   and c not in full[:i])
    r = client.chat.completions.create(
        model="tiny", messages=MSG, max_tokens=40, temperature=0, stop=[stop, "\x00never"],
        logprobs=True,
    )
    assert r.choices[0].message.content == full[:j]
    assert r.choices[0].finish_reason == "stop"
    content = r.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and r.usage is not None
    assert r.usage.completion_tokens == len(content) + 1  # the stop byte was generated


def test_logit_bias_and_max_completion_tokens(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="tiny", messages=MSG, max_completion_tokens=5, logit_bias={str(ord("A")): 100}
    )
    assert r.choices[0].message.content == "AAAAA"
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 5


def test_unknown_fields_are_ignored(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="tiny",
        messages=[
            {"role": "system", "content": "be terse"},
            {"role": "user", "content": [{"type": "text", "text": "What is 2+3?"}]},
        ],
        max_tokens=3,
        user="someone",
        presence_penalty=0.5,
        extra_body={"not_a_real_field": {"x": 1}},
    )
    assert len(r.choices) == 1


def test_chat_stream_matches_non_stream(client: openai.OpenAI) -> None:
    kw = {"model": "tiny", "messages": MSG, "max_tokens": 10, "seed": 3, "logprobs": True,
          "top_logprobs": 2}
    whole = client.chat.completions.create(**kw)  # type: ignore[call-overload]
    stream = client.chat.completions.create(
        **kw, stream=True, stream_options={"include_usage": True}
    )
    with stream:
        chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    lps = [t for c in chunks if c.choices and c.choices[0].logprobs
           for t in c.choices[0].logprobs.content or []]
    assert [t.token for t in lps] == [t.token for t in whole.choices[0].logprobs.content]
    assert all(len(t.top_logprobs) == 2 for t in lps)
    finals = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finals[-1] == whole.choices[0].finish_reason and set(finals[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


def test_legacy_completions(client: openai.OpenAI) -> None:
    prompt = "12+30="
    r = client.completions.create(model="tiny", prompt=prompt, max_tokens=6, logprobs=3, seed=2)
    assert r.object == "text_completion"
    lp = r.choices[0].logprobs
    assert lp is not None and lp.tokens and lp.token_logprobs and lp.top_logprobs
    assert lp.text_offset is not None
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset)
    assert all(len(d) == 3 for d in lp.top_logprobs)
    assert lp.text_offset[0] == len(prompt) and lp.text_offset == sorted(lp.text_offset)
    assert r.usage is not None and r.usage.prompt_tokens == len(prompt) + 2
    again = client.completions.create(model="tiny", prompt=[prompt], max_tokens=6, seed=2)
    assert again.choices[0].text == r.choices[0].text
    with client.completions.create(
        model="tiny", prompt=prompt, max_tokens=6, seed=2, stream=True
    ) as stream:
        streamed = "".join(c.choices[0].text for c in stream if c.choices)
    assert streamed == r.choices[0].text


def test_models_list(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"


def test_async_client(server: RunningServer) -> None:
    async def main() -> tuple[str, str]:
        async with openai.AsyncOpenAI(
            base_url=server.openai_base_url, api_key=KEY, max_retries=0
        ) as c:
            r = await c.chat.completions.create(model="tiny", messages=MSG, max_tokens=8, seed=9)
            stream = await c.chat.completions.create(
                model="tiny", messages=MSG, max_tokens=8, seed=9, stream=True
            )
            parts = [ch.choices[0].delta.content or "" async for ch in stream if ch.choices]
            return r.choices[0].message.content or "", "".join(parts)

    whole, streamed = asyncio.run(main())
    assert whole == streamed


def test_concurrent_requests(server: RunningServer) -> None:
    async def main() -> list[str]:
        async with openai.AsyncOpenAI(
            base_url=server.openai_base_url, api_key=KEY, max_retries=0
        ) as c:
            rs = await asyncio.gather(*(
                c.chat.completions.create(model="tiny", messages=MSG, max_tokens=6, seed=s)
                for s in range(6)
            ))
            return [r.choices[0].message.content or "" for r in rs]

    texts = asyncio.run(main())
    assert len(set(texts)) == 6


def test_unknown_route_is_404_in_openai_shape(server: RunningServer) -> None:
    r = httpx.get(f"{server.openai_base_url}/nope", headers={"authorization": f"Bearer {KEY}"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"


def test_audit_log_jsonl(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit" / "log.jsonl")
    ctx = RequestContext("openai", "/v1/completions", "attacker-3", 4, "tiny", "p",
                         SamplingParams())
    stack = DefenseStack([Gate(), Recorder()], log)
    stack.defenses[1].record(ctx, "flag", score=0.9)
    assert stack.check_request(replace(ctx, key_id="limited-0", index=5)) is not None
    assert log.flagged_at("attacker-3") == 4 and log.flagged_at("limited-0") is None
    lines = [json.loads(x) for x in (tmp_path / "audit" / "log.jsonl").read_text().splitlines()]
    assert [(x["entry_type"], x["kind"], x["defense"]) for x in lines] == [
        ("audit_event", "flag", "test-recorder"), ("audit_event", "reject", "test-gate")
    ]
    assert lines[0]["detail"] == {"score": 0.9}


def test_wrong_key_is_401_and_not_echoed(server: RunningServer) -> None:
    with _client(server, "fake-wrong-SECRET123") as c, pytest.raises(
        openai.AuthenticationError
    ) as err:
        c.chat.completions.create(model="tiny", messages=MSG)
    assert err.value.code == "invalid_api_key" and err.value.type == "invalid_request_error"
    assert "SECRET123" not in err.value.response.text
    r = httpx.post(f"{server.openai_base_url}/chat/completions", json={})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-nope", messages=MSG)
    assert err.value.code == "model_not_found"
    assert KEY not in err.value.response.text


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": 2.5},
        {"temperature": -0.1},
        {"n": 9},
        {"logprobs": True, "top_logprobs": 21},
        {"top_logprobs": 2},
        {"logit_bias": {"abc": 1}},
        {"logit_bias": {"65": 101}},
        {"stop": ["a", "b", "c", "d", "e"]},
        {"seed": 2**64},  # outside int64: a 400 like the vendor's, not a 500
        {"seed": -(2**63) - 1},
        {"messages": []},
        {"messages": [{"role": "system", "content": "only a system prompt"}]},
    ],
)
def test_bad_params_are_400(client: openai.OpenAI, bad: dict[str, object]) -> None:
    kw: dict[str, object] = {"model": "tiny", "messages": MSG, **bad}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(**kw)  # type: ignore[call-overload]
    assert err.value.type == "invalid_request_error"
    assert KEY not in err.value.response.text


def test_invalid_json_is_400(server: RunningServer) -> None:
    r = httpx.post(
        f"{server.openai_base_url}/chat/completions",
        content=b"{not json",
        headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


def test_rejection_is_429_with_retry_after(server: RunningServer, stack: DefenseStack) -> None:
    with _client(server, LIMITED) as c, pytest.raises(openai.RateLimitError) as err:
        c.chat.completions.create(model="tiny", messages=MSG)
    assert err.value.response.headers["retry-after"] == "7"
    assert err.value.code == "rate_limit_exceeded"
    assert LIMITED not in err.value.response.text
    events = stack.audit.events(key_id="limited-0", kind="reject")
    assert events and events[-1].defense == "test-gate" and events[-1].detail["status"] == 429


def test_logits_processor_defense(server: RunningServer) -> None:
    with _client(server, FORCED) as c:
        r = c.chat.completions.create(model="tiny", messages=MSG, max_tokens=4)
    assert r.choices[0].message.content == "ZZZZ"


def test_transform_defense(server: RunningServer) -> None:
    with _client(server, REDACT) as c:
        r = c.chat.completions.create(
            model="tiny", messages=MSG, max_tokens=4, logprobs=True, n=2
        )
        with c.chat.completions.create(
            model="tiny", messages=MSG, max_tokens=4, stream=True
        ) as stream:
            streamed = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    assert [ch.message.content for ch in r.choices] == ["[redacted]"] * 2
    assert all(ch.logprobs is None for ch in r.choices)
    assert streamed == "[redacted]"


def test_request_context(server: RunningServer, recorder: Recorder) -> None:
    before = len([c for c in recorder.seen if c.key_id == "attacker-0"])
    with _client(server, KEY) as c:
        for _ in range(2):
            c.chat.completions.create(
                model="tiny",
                messages=[
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": "first"},
                    {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": "second"},
                ],
                max_tokens=2,
                seed=4,
            )
    mine = [c for c in recorder.seen if c.key_id == "attacker-0"]
    assert [c.index for c in mine] == list(range(len(mine)))
    last = mine[-1]
    assert len(mine) == before + 2
    assert (last.api, last.route, last.model, last.prompt) == (
        "openai", "/v1/chat/completions", "tiny", "second"
    )
    assert last.params.seed == 4 and last.params.max_tokens == 2
