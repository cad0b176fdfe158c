"""Endpoint clients against a real local HTTP server speaking the OpenAI and Anthropic shapes.

:class:`FakeEndpoint` (also used by ``test_oracle.py``) is a small FastAPI app served by
uvicorn on 127.0.0.1 in a background thread. Tell it what to do next with ``script``:
``"ok"``, ``"nousage"``, ``"refuse"``, ``"429:<s>"`` (retry-after seconds), ``"429ms:<ms>"``
(retry-after-ms), ``"429"`` (no header), ``"quota"``, ``"500"``, ``"404"``, ``"403"``,
``"sleep:<s>"`` (answer late; OpenAI route only).
Unknown keys always get a 401 that echoes the key, as some vendors do.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from extractbench.clients import (
    Endpoint,
    EndpointError,
    QueryRequest,
    make_client,
    scrub,
)

GOOD_KEY = "eb-test-GOODkey-0123456789abcdef"
OTHER_KEY = "eb-test-OTHERkey-fedcba9876543210"
BAD_KEY = "eb-test-BADkey-00000000deadbeef"


class FakeEndpoint:
    def __init__(self) -> None:
        self.valid_keys = {GOOD_KEY, OTHER_KEY}
        self.script: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.url = ""
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self._openai)
        self.app.post("/v1/messages")(self._anthropic)

    def reset(self) -> None:
        with self.lock:
            self.script = []
            self.requests = []
            self.valid_keys = {GOOD_KEY, OTHER_KEY}

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    def keys_seen(self) -> list[str]:
        return [r["key"] for r in self.requests]

    def _next(self, path: str, request: Request, body: dict[str, Any]) -> tuple[str, str]:
        auth = request.headers.get("authorization", "")
        key = request.headers.get("x-api-key") or auth.removeprefix("Bearer ")
        with self.lock:
            self.requests.append({"path": path, "key": key, "body": body})
            if key not in self.valid_keys:
                return "401", key
            return (self.script.pop(0) if self.script else "ok"), key

    def _error(self, action: str, key: str, anthropic: bool) -> JSONResponse | None:
        status, _, arg = action.partition(":")
        headers: dict[str, str] = {}
        code = None
        if status == "401":
            message = f"Incorrect API key provided: {key}. Find your key at example.com."
        elif status == "429ms":
            status, message = "429", "slow down"
            headers["retry-after-ms"] = arg
        elif status == "quota":
            status, message, code = "429", "You exceeded your current quota", "insufficient_quota"
        elif status in ("429", "500", "404", "403"):
            message = f"fake {status}"
            if arg:
                headers["retry-after"] = arg
        else:
            return None
        if anthropic:
            content: dict[str, Any] = {
                "type": "error",
                "error": {"type": "api_error", "message": message},
            }
        else:
            content = {"error": {"message": message, "type": "error", "code": code}}
        return JSONResponse(content, status_code=int(status), headers=headers)

    async def _openai(self, request: Request) -> JSONResponse:
        body = await request.json()
        action, key = self._next("openai", request, body)
        if action.startswith("sleep:"):
            await asyncio.sleep(float(action.partition(":")[2]))
        error = self._error(action, key, anthropic=False)
        if error is not None:
            return error
        prompt = body["messages"][-1]["content"]
        text = f"answer to {prompt}"
        finish = "content_filter" if action == "refuse" else "stop"
        logprobs = None
        if body.get("logprobs"):
            n_top = body.get("top_logprobs") or 0
            logprobs = {
                "content": [
                    {
                        "token": tok,
                        "logprob": -0.5,
                        "bytes": None,
                        "top_logprobs": [
                            {"token": f"{tok}{j}", "logprob": -1.0 - j, "bytes": None}
                            for j in range(n_top)
                        ],
                    }
                    for tok in text.split()
                ]
            }
        out: dict[str, Any] = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                    "logprobs": logprobs,
                }
            ],
        }
        if action != "nousage":
            n_in, n_out = len(prompt.encode()), len(text.split())
            out["usage"] = {
                "prompt_tokens": n_in,
                "completion_tokens": n_out,
                "total_tokens": n_in + n_out,
            }
        return JSONResponse(out)

    async def _anthropic(self, request: Request) -> JSONResponse:
        body = await request.json()
        action, key = self._next("anthropic", request, body)
        error = self._error(action, key, anthropic=True)
        if error is not None:
            return error
        prompt = body["messages"][-1]["content"]
        text = f"answer to {prompt}"
        out: dict[str, Any] = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": "refusal" if action == "refuse" else "end_turn",
            "stop_sequence": None,
        }
        if action != "nousage":
            out["usage"] = {"input_tokens": len(prompt.encode()), "output_tokens": 3}
        return JSONResponse(out)


@contextmanager
def serve_fake() -> Iterator[FakeEndpoint]:
    """Run a :class:`FakeEndpoint` on 127.0.0.1 (a free port) for the duration."""
    fake = FakeEndpoint()
    config = uvicorn.Config(fake.app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.01)
        assert server.started, "fake endpoint did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        fake.url = f"http://127.0.0.1:{port}"
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


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
        "import sys, extractbench.clients, extractbench.oracle\n"
        "print('openai' in sys.modules, 'anthropic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]
