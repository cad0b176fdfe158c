"""Exit codes and the one-line error format every command shares."""

from __future__ import annotations

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
