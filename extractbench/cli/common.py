"""Exit codes and the one-line error format every command shares."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CELL_ERRORS, EXIT_SKIPPED = 0, 1, 2, 3, 4
"""Exit codes: 0 every cell measured and every gate passed; 1 a gate failed; 2 bad input (the
run did not start); 3 a cell errored; 4 cells were skipped (an endpoint's key is not set) and
``--allow-skipped`` was not given. When several hold, the lowest-numbered of 3, 1, 4 wins in
that order: an error, then a gate, then a skip. 130: interrupted."""


def err(msg: str) -> None:
    print(f"extractbench: {msg}", file=sys.stderr)


def serve_until_interrupted(server: Any, key_ids: list[str], default_key: bool) -> None:
    """Print the accepted key ids, then serve until Ctrl-C or SIGTERM (a container or service
    manager stopping it); the server is stopped either way and the command exits 0.

    The handlers are installed explicitly: a process started in the background by a shell
    inherits SIGINT ignored, and Python then never raises ``KeyboardInterrupt``."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"  key ids: {', '.join(key_ids)}" + ("  (default key: sk-local)" if default_key
                                                else ""), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


LIMIT_OPTIONS = {"max_body_bytes": "max_body_bytes", "header_timeout": "header_timeout_s",
                 "body_timeout": "body_timeout_s", "max_requests": "max_requests",
                 "max_connections": "max_connections"}
"""The server-limit options' ``argparse`` destinations -> their
:class:`~extractbench.serving.ServerLimits` fields."""


def positive(kind: type[int] | type[float]) -> Any:
    """An ``argparse`` type: a positive ``kind``."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """``serve``'s and ``proxy``'s server limits (defaults: ``ServerLimits``'s, not imported
    here so that ``--help`` stays light; ``tests/cli/test_serve_command.py`` checks they
    match)."""
    g = parser.add_argument_group("server limits")
    g.add_argument("--max-body-bytes", type=positive(int), metavar="N",
                   help="largest request body; larger is HTTP 413 (default 1048576)")
    g.add_argument("--header-timeout", type=positive(float), metavar="S",
                   help="seconds a client has to send its request headers; then HTTP 408 and "
                   "the connection is closed (default 10)")
    g.add_argument("--body-timeout", type=positive(float), metavar="S",
                   help="seconds a client has to send its request body; then HTTP 408 "
                   "(default 30)")
    g.add_argument("--max-requests", type=positive(int), metavar="N",
                   help="requests handled at once; more wait their turn (default 64)")
    g.add_argument("--max-connections", type=positive(int), metavar="N",
                   help="open connections; a request beyond them is HTTP 503 (default 512)")
