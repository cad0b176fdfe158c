"""Endpoint clients against a real local HTTP server speaking the OpenAI and Anthropic shapes.

The endpoint is :class:`extractbench.testing.FakeEndpoint`, a scriptable fake vendor.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from extractbench.endpoints.clients import (
    Endpoint,
    EndpointError,
    QueryRequest,
    make_client,
    scrub,
)
from extractbench.testing.fake_endpoint import (
    BAD_KEY,
    GOOD_KEY,
    OTHER_KEY,
    FakeEndpoint,
    closed_port_url,
    serve_fake,
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEndpoint]:
    with serve_fake() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeEndpoint) -> FakeEndpoint:
    server.reset()
    return server


def _complete(endpoint: Endpoint, req: QueryRequest, key: str = GOOD_KEY) -> Any:
    """One request through a fresh client; returns the Completion or the EndpointError."""

    async def go() -> Any:
        client = make_client(endpoint)
        try:
            return await client.complete(req, key)
        except EndpointError as e:
            return e
        finally:
            await client.aclose()

    return asyncio.run(go())


def _openai(fake: FakeEndpoint) -> Endpoint:
    return Endpoint(api="openai", base_url=fake.openai_url, model="m1", timeout_s=5)


def _anthropic(fake: FakeEndpoint) -> Endpoint:
    return Endpoint(api="anthropic", base_url=fake.url, model="claude-fake", timeout_s=5)


def test_openai_answer_and_usage(fake: FakeEndpoint) -> None:
    c = _complete(_openai(fake), QueryRequest(prompt="2+2", max_tokens=5))
    assert c.text == "answer to 2+2"
    assert c.finish_reason == "stop"
    assert (c.input_tokens, c.output_tokens) == (3, 3)
    assert c.logprobs is None
    body = fake.requests[0]["body"]
    assert body["max_tokens"] == 5 and body["model"] == "m1" and body["temperature"] == 0.0
    assert "logprobs" not in body and "top_logprobs" not in body and "seed" not in body
    assert fake.keys_seen() == [GOOD_KEY]


def test_openai_logprobs_only_when_requested(fake: FakeEndpoint) -> None:
    req = QueryRequest(prompt="hi", max_tokens=4, logprobs=True, top_logprobs=2, seed=7)
    c = _complete(_openai(fake), req)
    body = fake.requests[0]["body"]
    assert body["logprobs"] is True and body["top_logprobs"] == 2 and body["seed"] == 7
    assert [t.token for t in c.logprobs] == ["answer", "to", "hi"]
    assert [a.token for a in c.logprobs[0].top] == ["answer0", "answer1"]
    assert c.logprobs[0].top[1].logprob == -2.0


def test_anthropic_answer_and_body(fake: FakeEndpoint) -> None:
    req = QueryRequest(prompt="capital?", max_tokens=9, temperature=0.7, logprobs=True)
    c = _complete(_anthropic(fake), req)
    assert c.text == "answer to capital?"
    assert c.finish_reason == "end_turn"
    assert c.logprobs is None
    assert (c.input_tokens, c.output_tokens) == (8, 3)
    req_seen = fake.requests[0]
    assert req_seen["path"] == "anthropic" and req_seen["key"] == GOOD_KEY
    assert req_seen["body"]["max_tokens"] == 9 and req_seen["body"]["temperature"] == 0.7
    assert "logprobs" not in req_seen["body"]


def test_no_usage_gives_none(fake: FakeEndpoint) -> None:
    fake.script = ["nousage"]
    c = _complete(_openai(fake), QueryRequest(prompt="x", max_tokens=3))
    assert c.input_tokens is None and c.output_tokens is None
    fake.script = ["nousage"]
    c = _complete(_anthropic(fake), QueryRequest(prompt="x", max_tokens=3))
    assert c.input_tokens is None and c.output_tokens is None


@pytest.mark.parametrize(
    ("action", "error_type", "status", "retry_after"),
    [
        ("429:1.5", "rate_limit", 429, 1.5),
        ("429ms:250", "rate_limit", 429, 0.25),
        ("429", "rate_limit", 429, None),
        ("quota", "quota", 429, None),
        ("500", "server", 500, None),
        ("404", "not_found", 404, None),
        ("403", "permission", 403, None),
    ],
)
def test_status_errors_are_typed(
    fake: FakeEndpoint, action: str, error_type: str, status: int, retry_after: float | None
) -> None:
    endpoints = [_openai(fake)] if action == "quota" else [_openai(fake), _anthropic(fake)]
    for endpoint in endpoints:
        fake.script = [action]
        e = _complete(endpoint, QueryRequest(prompt="x", max_tokens=3))
        assert isinstance(e, EndpointError), endpoint.api
        assert (e.error_type, e.status, e.retry_after) == (error_type, status, retry_after)


def test_auth_error_message_never_holds_the_key(fake: FakeEndpoint) -> None:
    for endpoint in (_openai(fake), _anthropic(fake)):
        e = _complete(endpoint, QueryRequest(prompt="x", max_tokens=3), key=BAD_KEY)
        assert isinstance(e, EndpointError)
        assert (e.error_type, e.status) == ("auth", 401)
        assert "Incorrect API key" in e.message
        assert BAD_KEY not in e.message and BAD_KEY not in str(e) and BAD_KEY not in repr(e)
        assert e.__cause__ is None and e.__suppress_context__


def test_connection_refused() -> None:
    endpoint = Endpoint(api="openai", base_url=closed_port_url() + "/v1", model="m", timeout_s=5)
    e = _complete(endpoint, QueryRequest(prompt="x", max_tokens=3))
    assert isinstance(e, EndpointError)
    assert (e.error_type, e.status) == ("connection", None)


def test_timeout(fake: FakeEndpoint) -> None:
    fake.script = ["sleep:0.6"]
    endpoint = Endpoint(api="openai", base_url=fake.openai_url, model="m", timeout_s=0.2)
    e = _complete(endpoint, QueryRequest(prompt="x", max_tokens=3))
    assert isinstance(e, EndpointError)
    assert (e.error_type, e.status) == ("timeout", None)


def test_one_sdk_client_per_key_reused(fake: FakeEndpoint) -> None:
    async def go() -> int:
        client = make_client(_openai(fake))
        try:
            for key in (GOOD_KEY, OTHER_KEY, GOOD_KEY, OTHER_KEY):
                await client.complete(QueryRequest(prompt="x", max_tokens=2), key)
            return len(client._sdk_clients)  # type: ignore[attr-defined]
        finally:
            await client.aclose()

    assert asyncio.run(go()) == 2
    assert fake.keys_seen() == [GOOD_KEY, OTHER_KEY, GOOD_KEY, OTHER_KEY]


def test_scrub_full_and_partial_keys() -> None:
    key = "test-key-ABCDEFGH12345678wxyz"
    text = f"bad key {key}; also test-key-ABCD****5678wxyz and 'test-key-ABCDEFGH...' ok"
    out = scrub(text, [key])
    assert key not in out and "ABCDEFGH" not in out and "5678wxyz" not in out
    assert out.startswith("bad key [redacted];") and out.endswith("ok")
    assert scrub("nothing here", [key]) == "nothing here"


def test_sdks_are_imported_lazily() -> None:
    code = (
        "import sys, extractbench.endpoints.clients, extractbench.campaign.oracle\n"
        "print('openai' in sys.modules, 'anthropic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]
