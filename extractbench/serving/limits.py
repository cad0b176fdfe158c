"""How much a client may ask of the server: body size, time to send the request, requests in
flight and open connections. Both the reference server and the defense proxy run with them
(:class:`~extractbench.serving.RunningServer` applies them; ``extractbench serve`` and
``extractbench proxy`` set them from their options).

    RunningServer(app, limits=ServerLimits(max_body_bytes=64 * 1024, header_timeout_s=2))

What a client sees when it exceeds one:

- a body over ``max_body_bytes``: HTTP 413 in the API's error shape, decided from
  ``Content-Length`` before anything is read, or as soon as a chunked body passes the limit
  (the rest is read and discarded, so the client gets the answer, for at most
  ``body_timeout_s``);
- request headers not complete ``header_timeout_s`` after the connection opened (or after the
  previous response on a kept-alive connection): HTTP 408 and the connection is closed, however
  slowly the bytes trickle in; an idle connection is closed without a word;
- a body not complete ``body_timeout_s`` after the server started reading it: HTTP 408 in the
  API's error shape and the connection is closed;
- more than ``max_requests`` requests at once: the next ones wait (their bodies unread, the
  connection paused) until one finishes;
- more than ``max_connections`` open connections: HTTP 503 (uvicorn's ``limit_concurrency``).

Headers larger than ``max_header_bytes`` are an HTTP 400 (h11's
``max_incomplete_event_size``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MiB", "ServerLimits"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class ServerLimits:
    """Per-server limits; every field must be positive."""

    max_body_bytes: int = MiB
    """Largest request body accepted (the wire prompts of every shipped task are under 1 KiB;
    the vendors' own limit is 32 MB)."""
    header_timeout_s: float = 10.0
    """Seconds a client has to send the request line and headers."""
    body_timeout_s: float = 30.0
    """Seconds a client has to send the body once the server reads it (1 MiB in 30 s is
    35 KB/s); also how long a rejected body is drained before the connection is closed."""
    max_requests: int = 64
    """Requests handled at once (bodies buffered, parsed, waiting for the model); more wait.
    Above the served models' batch size (32), so batching is not starved."""
    max_connections: int = 512
    """Open connections; a request on a connection beyond it is answered 503."""
    max_header_bytes: int = 16 * 1024
    """Largest request head (request line and headers)."""

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "header_timeout_s", "body_timeout_s", "max_requests",
                     "max_connections", "max_header_bytes"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"ServerLimits.{name} must be positive, got {value!r}")
