"""The ``extractbench`` command line: the parser, and dispatch to one module per command.

Every user-facing failure (bad scenario, unreachable endpoint, missing key) ends as one line on
stderr and a non-zero exit code: 2 for bad input, 1 for a run whose gates failed or whose
cells errored, 0 otherwise. The command modules import only ``argparse`` at parse time; what a
command needs (torch, pandas, the servers) loads when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from extractbench.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

__all__ = ["COMMANDS", "EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]

COMMANDS = ("run", "serve", "validate", "schema", "listing", "leaderboard", "proxy",
            "train_reference")
"""Modules of :mod:`extractbench.cli`, in ``--help`` order; each has ``register(subparsers)``,
which sets ``func`` to the command (it returns the exit code)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="extractbench",
        description="Measure how well an LLM API endpoint resists capability extraction by "
        "distillation: run query campaigns, train students on the harvest, score them on "
        "held-out tasks, and rank the defended endpoints.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"extractbench.cli.{name}").register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
