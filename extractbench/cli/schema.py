"""``extractbench schema``: the JSON Schema of scenario files (for editors)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from extractbench.cli.common import EXIT_OK


def cmd(args: argparse.Namespace) -> int:
    from extractbench.config.scenario import json_schema

    text = json.dumps(json_schema(), indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    else:
        print(text)
    return EXIT_OK


def register(sub: Any) -> None:
    sc = sub.add_parser("schema", help="print the scenario JSON Schema",
                        description="Print the JSON Schema of scenario files (for editors).")
    sc.add_argument("-o", "--output", help="write to this file instead of stdout")
    sc.set_defaults(func=cmd)
