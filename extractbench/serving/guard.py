"""The ASGI layer in front of either app: at most ``max_requests`` requests at once, and each
request's body read in full, within ``max_body_bytes`` and ``body_timeout_s``, before the app
sees it; a request over a limit is answered in its API's error shape (:class:`ApiError`).

    Guard(app, ServerLimits())   # what RunningServer serves

An oversized ``Content-Length`` is refused before any of the body is read (and before the
request waits for a slot); a chunked body is refused as soon as it passes the limit, so no more
than ``max_body_bytes`` of one body is ever held. The app receives the body as one message.
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from extractbench.serving.errors import ApiError, Family, family_of_scope
from extractbench.serving.limits import ServerLimits

__all__ = ["Guard", "too_large"]


def too_large(size: int | None, limit: int) -> ApiError:
    """The 413 for a body of ``size`` bytes (``None``: a chunked body that passed ``limit``)."""
    what = f"is {size} bytes" if size is not None else f"is larger than {limit} bytes"
    return ApiError(413, f"The request body {what}; this server accepts at most {limit} bytes "
                    "per request.", code="request_too_large")


def _timed_out(seconds: float) -> ApiError:
    return ApiError(408, f"The request body did not arrive within {seconds:g} s.",
                    code="request_timeout")


class Guard:
    """ASGI middleware applying a :class:`ServerLimits` to every HTTP request."""

    def __init__(self, app: ASGIApp, limits: ServerLimits) -> None:
        self.app = app
        self.limits = limits
        self._slots: asyncio.Semaphore | None = None
        self.in_flight = 0
        """Requests holding a slot now."""

    def __repr__(self) -> str:
        return f"Guard({self.limits})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        family = family_of_scope(scope)
        declared = _content_length(scope)
        if declared is not None and declared > self.limits.max_body_bytes:
            await _answer(too_large(declared, self.limits.max_body_bytes), family, scope, receive,
                          send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limits.max_requests)
        async with self._slots:
            self.in_flight += 1
            try:
                await self._handle(scope, receive, send, family)
            finally:
                self.in_flight -= 1

    async def _handle(self, scope: Scope, receive: Receive, send: Send, family: Family) -> None:
        try:
            async with asyncio.timeout(self.limits.body_timeout_s):
                body = await self._read(receive)
        except TimeoutError:
            await _answer(_timed_out(self.limits.body_timeout_s), family, scope, receive, send,
                          close=True)
            return
        except ApiError as exc:
            await _answer(exc, family, scope, receive, send)
            return
        if body is None:  # the client went away
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, ``None`` when the client disconnected; :class:`ApiError` 413 once
        it passes the limit."""
        limit = self.limits.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large(None, limit)
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:  # h11 refuses a malformed length before the app runs
        return None


async def _answer(error: ApiError, family: Family, scope: Scope, receive: Receive, send: Send,
                  close: bool = False) -> None:
    response = error.response(family)
    if close:
        response.headers["connection"] = "close"
    await response(scope, receive, send)
