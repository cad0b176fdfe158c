"""Exit codes and the one-line error format every command shares."""

from __future__ import annotations

import sys
import threading
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
"""0: done; 1: a run whose gates failed or whose cells errored; 2: bad input."""


def err(msg: str) -> None:
    print(f"extractbench: {msg}", file=sys.stderr)


def serve_until_interrupted(server: Any, key_ids: list[str], default_key: bool) -> None:
    """Print the accepted key ids, then serve until Ctrl-C; the server is stopped either way."""
    print(f"  key ids: {', '.join(key_ids)}" + ("  (default key: sk-local)" if default_key
                                                else ""), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
