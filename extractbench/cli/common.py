"""Exit codes and the one-line error format every command shares."""

from __future__ import annotations

import sys

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
"""0: done; 1: a run whose gates failed or whose cells errored; 2: bad input."""


def err(msg: str) -> None:
    print(f"extractbench: {msg}", file=sys.stderr)
