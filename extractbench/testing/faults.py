"""A fault-injecting TCP proxy for the fault suite: the real SDK clients talk to it as to an
endpoint, it forwards to a real upstream (the reference server) and breaks each request as
its plan says. Raw sockets, so it can do what no well-behaved HTTP server does: cut a response
mid-body, reset a connection, stall.

    with FaultProxy(upstream_url) as proxy:
        proxy.plan = ["429:0.2", "cut", "pass"]
        client = openai.OpenAI(base_url=proxy.url + "/v1", api_key=KEY)

Actions, one per request in arrival order (``"pass"`` once the plan is empty):

- ``pass``: forward and relay the response;
- ``429:<s>``: answer 429 with ``retry-after: <s>`` (the API's error shape), not forwarded;
- ``500``: answer 500 (the API's error shape), not forwarded;
- ``stall:<s>``: say nothing for ``s`` seconds, then close (a client timeout), not forwarded;
- ``reset``: close the connection with a TCP reset before forwarding;
- ``reset-served``: forward (the upstream serves and bills it), then reset instead of answering;
- ``malformed``: forward, then answer 200 with the first half of the upstream's body as a
  complete message (a JSON document or an event stream cut short and closed properly);
- ``cut``: forward, then relay the upstream's headers and half its body and close (the
  ``Content-Length`` or the chunked encoding promises more).

:attr:`FaultProxy.log` has one ``(action, path, forwarded)`` per request.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["FAULTS", "FaultProxy"]

FAULTS = ("429", "500", "stall", "reset", "reset-served", "malformed", "cut")
"""The fault kinds (``429`` and ``stall`` take a ``:<seconds>`` argument)."""


class FaultProxy:
    def __init__(self, upstream_url: str) -> None:
        u = urlsplit(upstream_url)
        self.upstream = (u.hostname or "127.0.0.1", u.port or 80)
        self.plan: list[str] = []
        self.log: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="fault-proxy")
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.plan, self.log = [], []

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop)
        self._server = fut.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _next(self, path: str) -> str:
        with self._lock:
            action = self.plan.pop(0) if self.plan else "pass"
            self.log.append((action, path, action in ("pass", "reset-served", "malformed",
                                                      "cut")))
            return action

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1] if " " in lines[0] else "/"
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        body = await reader.readexactly(length) if length else b""
        action, _, arg = self._next(path).partition(":")
        anthropic = path.endswith("/messages")
        try:
            if action == "429":
                writer.write(_error(429, "rate_limit_error", "slow down (fault proxy)",
                                    anthropic, {"retry-after": arg or "0"}))
            elif action == "500":
                writer.write(_error(500, "api_error", "internal error (fault proxy)", anthropic))
            elif action == "stall":
                await asyncio.sleep(float(arg or 5))
            elif action == "reset":
                _rst(writer)
                return
            else:
                response = await self._forward(lines, body)
                if action == "reset-served":
                    _rst(writer)
                    return
                if action == "malformed":
                    response = _malformed(response)
                elif action == "cut":
                    response = _cut(response)
                writer.write(response)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    async def _forward(self, lines: list[str], body: bytes) -> bytes:
        """The upstream's whole response to the request (sent with ``Connection: close``)."""
        kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith("connection:")]
        head = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
        r, w = await asyncio.open_connection(*self.upstream)
        w.write(head + body)
        await w.drain()
        data = await r.read()
        w.close()
        return _close_after(data)


def _split(response: bytes) -> tuple[bytes, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return head, body


def _close_after(response: bytes) -> bytes:
    head, body = _split(response)
    kept = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
    return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n" + body


def _dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


def _cut(response: bytes) -> bytes:
    """Headers and half the body as sent; the connection closes after it."""
    head, body = _split(response)
    return head + b"\r\n\r\n" + body[: max(1, len(body) // 2)]


def _malformed(response: bytes) -> bytes:
    """A complete 200 whose payload is the first half of the upstream's (JSON or events)."""
    head, body = _split(response)
    chunked = b"transfer-encoding: chunked" in head.lower()
    payload = _dechunk(body) if chunked else body
    half = payload[: max(1, len(payload) // 2)]
    if b"text/event-stream" in head.lower():
        half = half.rsplit(b"\n", 1)[0] + b"\n\n"  # end the events cleanly, mid-stream
        ctype = b"text/event-stream"
    else:
        ctype = b"application/json"
    return (b"HTTP/1.1 200 OK\r\ncontent-type: " + ctype + b"\r\ncontent-length: "
            + str(len(half)).encode() + b"\r\nConnection: close\r\n\r\n" + half)


def _error(status: int, kind: str, message: str, anthropic: bool,
           headers: dict[str, str] | None = None) -> bytes:
    if anthropic:
        payload = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        payload = {"error": {"message": message, "type": kind, "code": None}}
    body = json.dumps(payload).encode()
    reason = {429: "Too Many Requests", 500: "Internal Server Error"}[status]
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{extra}Connection: close\r\n\r\n").encode() + body


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), not a clean FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
