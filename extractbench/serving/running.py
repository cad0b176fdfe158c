"""Running the app: in a background thread on a free loopback port, or in the foreground;
either way behind the :class:`~extractbench.serving.limits.ServerLimits` (body size, header
and body deadlines, requests in flight, connections)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from extractbench.serving.connection import protocol_class
from extractbench.serving.guard import Guard
from extractbench.serving.limits import ServerLimits


def server_config(app: FastAPI, limits: ServerLimits, **kwargs: Any) -> uvicorn.Config:
    """The uvicorn configuration serving ``app`` behind ``limits`` (``kwargs``: the rest of
    ``uvicorn.Config``). No access log: keys stay out of logs."""
    return uvicorn.Config(
        Guard(app, limits),
        http=protocol_class(limits),
        ws="none",
        # uvicorn answers 503 once the open connections (this one included) reach the limit
        limit_concurrency=limits.max_connections + 1,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        access_log=False,
        **kwargs,
    )


def listening_socket() -> socket.socket:
    """A TCP socket to serve on, with Nagle's algorithm off (``TCP_NODELAY``, which the
    connections it accepts inherit on Linux). With it on, each keep-alive response, whose head
    and body go out in two writes, waited for the client's delayed ACK: about 50 ms a request
    at concurrency 1, against about 4 ms without (``scripts/server_latency.py``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class RunningServer:
    """A uvicorn server for ``app`` in a background thread; a context manager.

    ``port=0`` picks a free port; :attr:`port` is the actual one. Point the OpenAI SDK at
    :attr:`openai_base_url` and the Anthropic SDK at :attr:`anthropic_base_url`. ``limits``
    default to :class:`ServerLimits`'s defaults.
    """

    def __init__(
        self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0,
        limits: ServerLimits | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.limits = limits or ServerLimits()
        self._sock = listening_socket()
        try:
            self._sock.bind((host, port))
        except OSError:
            self._sock.close()  # a busy port: release the socket, the caller reports it
            raise
        self.port: int = self._sock.getsockname()[1]
        config = server_config(app, self.limits, log_config=None, log_level="warning",
                               lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]},
            name=f"extractbench-server-{self.port}", daemon=True,
        )
        self._timeout = timeout
        self._started = False

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """For ``openai.OpenAI(base_url=...)``: the SDK appends ``/chat/completions``."""
        return f"{self.base_url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """For ``anthropic.Anthropic(base_url=...)``: the SDK appends ``/v1/messages``."""
        return self.base_url

    def start(self) -> RunningServer:
        """Start serving and wait until the server answers HTTP."""
        if self._started:
            return self
        self._started = True
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"server on {self.base_url} exited while starting")
            if self._server.started:
                try:
                    httpx.get(f"{self.base_url}/v1/models", timeout=1.0)
                    return self
                except httpx.TransportError:
                    pass
            time.sleep(0.01)
        self.stop()
        raise TimeoutError(f"server on {self.base_url} did not answer in {self._timeout:.0f} s")

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=self._timeout)
        self._sock.close()

    def __enter__(self) -> RunningServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(app: FastAPI, host: str = "127.0.0.1", port: int = 8000,
                  limits: ServerLimits | None = None) -> None:
    """Serve ``app`` in the foreground until interrupted (no access log: keys stay out)."""
    config = server_config(app, limits or ServerLimits(), host=host, port=port,
                           log_level="info")
    sock = listening_socket()
    try:
        sock.bind((host, port))
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
