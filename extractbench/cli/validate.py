"""``extractbench validate FILE...``: every problem of a scenario file, one line each."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from extractbench.cli.common import EXIT_BAD_INPUT, EXIT_OK


def cmd(args: argparse.Namespace) -> int:
    from extractbench.config.scenario import ScenarioError, load_scenario, missing_keys

    status = EXIT_OK
    for file in args.files:
        try:
            sc = load_scenario(file)
        except ScenarioError as exc:
            for line in exc.lines:
                print(line, file=sys.stderr)
            status = EXIT_BAD_INPUT
            continue
        for name, var in missing_keys(sc).items():
            print(f"{file}: endpoints.{name}.api_key_env: environment variable {var} is not set "
                  f"(export {var}=... to run this endpoint; its cells will be skipped)",
                  file=sys.stderr)
        from extractbench.config.plan import grid

        n = len(grid(sc))
        print(f"{file}: ok ({n} cells)")
    return status


def register(sub: Any) -> None:
    v = sub.add_parser("validate", help="check scenario files",
                       description="Validate scenario files; prints every problem as "
                       "`FILE: field.path: problem (hint)`. Exit 2 on any problem.")
    v.add_argument("files", nargs="+", help="scenario YAML files")
    v.set_defaults(func=cmd)
