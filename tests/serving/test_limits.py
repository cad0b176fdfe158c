"""The server protects itself like a vendor endpoint: request bodies over the limit are a 413 in
each API's error shape (by ``Content-Length`` before reading, or while a chunked body streams
in), slow or stalled clients are cut off after a bounded time, and the requests in flight and
the open connections are capped. Real HTTP throughout: the official SDKs where the client sees
the behaviour, raw sockets for the slow clients.

Timings carry generous slack: the suite shares a 2-core machine with CPU-heavy jobs.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from fastapi import FastAPI

from extractbench.defenses import DefenseStack
from extractbench.reference.lm import TinyLM
from extractbench.serving import (
    RunningServer,
    ServedModel,
    ServerLimits,
    create_app,
    create_proxy_app,
)
from extractbench.serving.guard import Guard

KEY = "fake-limits-0-5e6f7a"
LIMIT = 64 * 1024
TIMEOUT_S = 1.0
SLACK_S = 4.0
LIMITS = ServerLimits(max_body_bytes=LIMIT, header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S)
MSG: list[Any] = [{"role": "user", "content": "What is 2+3?"}]


def _app(tiny_lm: TinyLM, stack: DefenseStack | None = None) -> Any:
    return create_app({"tiny": ServedModel("tiny", tiny_lm)}, {KEY: "attacker-0"}, stack)


@pytest.fixture(scope="module")
def server(tiny_lm: TinyLM) -> Iterator[RunningServer]:
    with RunningServer(_app(tiny_lm), limits=LIMITS) as srv:
        yield srv


def _big_messages(size: int) -> list[Any]:
    """A valid body of about ``size`` bytes (the padding is a system prompt)."""
    return [{"role": "system", "content": "x" * size}, *MSG]


# -- body size -------------------------------------------------------------------------------


def test_an_oversized_body_is_a_413_in_the_openai_shape(server: RunningServer) -> None:
    with openai.OpenAI(base_url=server.openai_base_url, api_key=KEY, max_retries=0) as c:
        with pytest.raises(openai.APIStatusError) as err:
            c.chat.completions.create(model="tiny", messages=_big_messages(2 * LIMIT),
                                      max_tokens=2)
        assert err.value.status_code == 413
        body = err.value.response.json()
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["code"] == "request_too_large"
        assert f"at most {LIMIT} bytes" in body["error"]["message"]
        # the rest of the body was drained: the same client (connection) goes on working
        ok = c.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)
        assert ok.choices[0].message.content is not None


def test_an_oversized_body_is_request_too_large_in_the_anthropic_shape(
        server: RunningServer) -> None:
    with anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=KEY,
                             max_retries=0) as c:
        with pytest.raises(anthropic.APIStatusError) as err:
            c.messages.create(model="tiny", max_tokens=2, messages=MSG,
                              system="x" * (2 * LIMIT))
        assert err.value.status_code == 413
        assert err.value.response.json()["type"] == "error"
        assert err.value.response.json()["error"]["type"] == "request_too_large"
        assert c.messages.create(model="tiny", max_tokens=2, messages=MSG).content


def test_a_body_at_the_limit_is_served(server: RunningServer) -> None:
    body = {"model": "tiny", "messages": _big_messages(0), "max_tokens": 2}
    pad = LIMIT - len(json.dumps(body).encode())
    body["messages"][0]["content"] = "x" * pad
    raw = json.dumps(body).encode()
    assert len(raw) == LIMIT
    r = httpx.post(f"{server.openai_base_url}/chat/completions", content=raw,
                   headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"})
    assert r.status_code == 200, r.text


def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    head = b'{"model": "tiny", "max_tokens": 2, "messages": [{"role": "user", "content": "'
    yield head
    sent = len(head)
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}]}'


@pytest.mark.parametrize(("path", "family"), [("/v1/chat/completions", "openai"),
                                              ("/v1/messages", "anthropic")])
def test_a_chunked_body_is_refused_once_it_passes_the_limit(
        server: RunningServer, path: str, family: str) -> None:
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    r = httpx.post(f"{server.base_url}{path}", content=_chunks(4 * LIMIT), headers=headers)
    assert "content-length" not in r.request.headers  # sent chunked
    assert r.status_code == 413
    error = r.json()["error"]
    assert error["type"] == ("request_too_large" if family == "anthropic"
                             else "invalid_request_error")


def test_a_chunked_body_under_the_limit_is_served(server: RunningServer) -> None:
    r = httpx.post(f"{server.openai_base_url}/chat/completions", content=_chunks(50),
                   headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"})
    assert r.status_code == 200, r.text


def test_the_guard_never_holds_more_than_the_limit() -> None:
    """An endless body: the guard stops reading one chunk past the limit."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def endless() -> dict[str, Any]:
        nonlocal pulled
        pulled += 4096
        return {"type": "http.request", "body": b"x" * 4096, "more_body": True}

    async def send(message: Any) -> None:
        sent.append(message)

    async def never(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not run")

    scope = {"type": "http", "path": "/v1/chat/completions", "headers": [], "method": "POST"}
    asyncio.run(Guard(never, LIMITS)(scope, endless, send))
    assert sent[0]["status"] == 413
    assert LIMIT < pulled <= LIMIT + 4096


def test_the_proxy_refuses_oversized_bodies_without_calling_upstream() -> None:
    app = create_proxy_app("http://127.0.0.1:9/v1", "openai", "fake-up", None, {KEY: "a"})
    with RunningServer(app, limits=LIMITS) as proxy, openai.OpenAI(
            base_url=proxy.openai_base_url, api_key=KEY, max_retries=0) as c, pytest.raises(
            openai.APIStatusError) as err:
        c.chat.completions.create(model="m", messages=_big_messages(2 * LIMIT))
    assert err.value.status_code == 413 and err.value.code == "request_too_large"


# -- slow clients ----------------------------------------------------------------------------


def _connect(server: RunningServer) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=30)


def _readable(sock: socket.socket, wait: float) -> bool:
    return bool(select.select([sock], [], [], wait)[0])


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk


def _trickle(sock: socket.socket, data: bytes, gap: float) -> tuple[float, bytes]:
    """Send ``data`` a byte every ``gap`` seconds until the server answers or closes: the
    seconds that took, and what it sent."""
    start = time.monotonic()
    for byte in data:
        if _readable(sock, gap):
            break
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            break
    else:
        _readable(sock, 30)
    return time.monotonic() - start, _read_all(sock)


def _read_response(sock: socket.socket, timeout_s: float = 30) -> bytes:
    """One whole response (head and its content-length body), however many reads it takes:
    the server may write the head and the body separately."""
    data = b""
    while b"\r\n\r\n" not in data:
        assert _readable(sock, timeout_s)
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        assert _readable(sock, timeout_s)
        chunk = sock.recv(65536)
        assert chunk, data
        body += chunk
    return head + b"\r\n\r\n" + body


HEAD = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
        + b"".join(b"x-pad-%d: %s\r\n" % (i, b"p" * 20) for i in range(20)))


def test_headers_sent_byte_by_byte_are_cut_off_with_a_408(server: RunningServer) -> None:
    with _connect(server) as sock:
        took, answer = _trickle(sock, HEAD, gap=0.1)  # 600 bytes: a minute at this pace
    assert TIMEOUT_S * 0.9 <= took <= TIMEOUT_S + SLACK_S
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_kept_alive_connection_gets_the_same_deadline_for_its_next_request(
        server: RunningServer) -> None:
    body = json.dumps({"model": "tiny", "messages": MSG, "max_tokens": 2}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
               b"authorization: Bearer " + KEY.encode() + b"\r\n"
               b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
               + body)
    with _connect(server) as sock:
        sock.sendall(request)
        assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
        took, answer = _trickle(sock, HEAD, gap=0.1)
    assert took <= TIMEOUT_S + SLACK_S
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_an_idle_connection_is_closed(server: RunningServer) -> None:
    with _connect(server) as sock:
        start = time.monotonic()
        assert _readable(sock, 30)
        took = time.monotonic() - start
        assert _read_all(sock) == b""
    assert TIMEOUT_S * 0.9 <= took <= TIMEOUT_S + SLACK_S


@pytest.mark.parametrize(("path", "family"), [("/v1/chat/completions", "openai"),
                                              ("/v1/messages", "anthropic")])
def test_a_body_that_stops_midway_is_a_408_and_the_connection_closes(
        server: RunningServer, path: str, family: str) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nhost: x\r\n"
                     b"content-type: application/json\r\ncontent-length: 1000\r\n\r\n"
                     b'{"model": "tiny", ')
        start = time.monotonic()
        assert _readable(sock, 30)
        answer = _read_all(sock)
        took = time.monotonic() - start
    assert TIMEOUT_S * 0.9 <= took <= TIMEOUT_S + SLACK_S
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head.lower()
    data = json.loads(body)
    if family == "anthropic":
        assert data["type"] == "error" and data["error"]["type"] == "invalid_request_error"
    else:
        assert data["error"]["code"] == "request_timeout"


def test_a_refused_body_is_drained_for_a_bounded_time(server: RunningServer) -> None:
    """413 at once from the declared length; a client that then stalls is disconnected."""
    with _connect(server) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                     b"content-length: 50000000\r\n\r\n" + b"x" * 1000)
        assert _readable(sock, 30)
        start = time.monotonic()
        answer = _read_all(sock)
        took = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert took <= TIMEOUT_S + SLACK_S


# -- requests and connections at once --------------------------------------------------------


def _overlap_of(limits: ServerLimits, n: int) -> int:
    """The most of ``n`` concurrent requests an app saw at once (each takes 0.3 s)."""
    app = FastAPI()
    seen = {"inside": 0, "most": 0}

    @app.get("/slow")
    async def slow() -> dict[str, int]:
        seen["inside"] += 1
        seen["most"] = max(seen["most"], seen["inside"])
        await asyncio.sleep(0.3)
        seen["inside"] -= 1
        return seen

    with RunningServer(app, limits=limits) as srv:

        async def main() -> None:
            async with httpx.AsyncClient(timeout=60) as c:
                rs = await asyncio.gather(*(c.get(f"{srv.base_url}/slow") for _ in range(n)))
            assert [r.status_code for r in rs] == [200] * n

        asyncio.run(main())
    return seen["most"]


def test_requests_beyond_max_requests_wait_their_turn() -> None:
    assert _overlap_of(ServerLimits(max_requests=2), 6) == 2
    assert _overlap_of(ServerLimits(), 6) == 6  # without the cap all six overlap


def test_a_request_beyond_max_connections_is_a_503(tiny_lm: TinyLM) -> None:
    with RunningServer(_app(tiny_lm), limits=ServerLimits(max_connections=2)) as srv:
        url = f"{srv.openai_base_url}/models"
        headers = {"authorization": f"Bearer {KEY}"}
        with _connect(srv), _connect(srv):
            time.sleep(0.3)  # both accepted
            assert httpx.get(url, headers=headers).status_code == 503
        time.sleep(0.3)  # both gone
        assert httpx.get(url, headers=headers).status_code == 200


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_body_bytes must be positive"):
        ServerLimits(max_body_bytes=0)


def test_the_listening_socket_has_nagle_off(server: RunningServer) -> None:
    """Each keep-alive response goes out in two writes; with Nagle's algorithm on, the second
    waited for the client's delayed ACK (about 50 ms a request; scripts/server_latency.py
    measures it). Linux hands the listening socket's TCP_NODELAY to every connection it
    accepts; the server still answers on it."""
    assert server._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    with socket.create_connection((server.host, server.port)) as client:
        client.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.recv(1024).startswith(b"HTTP/1.1 ")
