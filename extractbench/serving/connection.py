"""The connection's own deadlines, which uvicorn does not have: a client must finish its request
head within ``header_timeout_s`` (a slow-loris client trickling header bytes is cut off, not
kept alive by every byte), and a body the app answered without reading (a 413) is drained for
at most ``body_timeout_s`` before the connection is closed.

uvicorn's h11 protocol with two timers; :func:`protocol_class` binds the limits to it (uvicorn
builds one protocol object per connection from the class). Reading the body while the app
waits for it is timed by :mod:`extractbench.serving.guard`, which can answer in the API's
error shape.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from extractbench.serving.limits import ServerLimits

__all__ = ["GuardedH11Protocol", "protocol_class"]

Wait = Literal["head", "drain"]

_TIMEOUT_BODY = b"Request Timeout: the request headers did not arrive in time.\n"
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _TIMEOUT_BODY
)


class GuardedH11Protocol(H11Protocol):
    """One HTTP/1.1 connection, with a deadline while the server waits for the client."""

    limits = ServerLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: Wait | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._update()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._update()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._update()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._waiting = None, None

    def _update(self) -> None:
        """(Re)arm the deadline for what the connection now waits for; a deadline already
        running for the same wait is kept (more bytes do not buy more time)."""
        if self.transport is None or self.transport.is_closing():
            self._cancel()
            return
        answering = self.cycle is not None and not self.cycle.response_complete
        state = self.conn.their_state
        want: Wait | None = None
        if not answering and state is h11.IDLE:
            want = "head"
        elif not answering and state is h11.SEND_BODY:
            want = "drain"
        if want == self._waiting:
            return
        self._cancel()
        if want is not None:
            seconds = (self.limits.header_timeout_s if want == "head"
                       else self.limits.body_timeout_s)
            self._timer = self.loop.call_later(seconds, self._expire)
            self._waiting = want

    def _expire(self) -> None:
        waiting = self._waiting
        self._timer, self._waiting = None, None
        if self.transport.is_closing():
            return
        if waiting == "head" and self.conn.trailing_data[0]:
            # part of a request head arrived: say why before closing (an idle kept-alive
            # connection is closed without a word, as after uvicorn's keep-alive timeout)
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()


def protocol_class(limits: ServerLimits) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` class with ``limits`` (for ``uvicorn.Config(http=...)``)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})
