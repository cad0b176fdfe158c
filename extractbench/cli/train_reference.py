"""``extractbench train-reference``: reproduce the shipped reference teachers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from extractbench.cli.common import EXIT_BAD_INPUT, EXIT_OK, err


def cmd(args: argparse.Namespace) -> int:
    from extractbench.reference.teachers import MODELS_DIR, SPECS, train_reference

    names = args.names or sorted(SPECS)
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        err(f"unknown reference model {unknown[0]!r} (known: {', '.join(sorted(SPECS))})")
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else MODELS_DIR
    for name in names:
        train_reference(name, out, steps=args.steps)
    return EXIT_OK


def register(sub: Any) -> None:
    t = sub.add_parser("train-reference", help="reproduce the shipped reference teachers",
                       description="Train the reference teacher models from generated ground "
                       "truth and write their safetensors weights (CPU, a few minutes each).")
    t.add_argument("names", nargs="*", help="models to train (default: all)")
    t.add_argument("--steps", type=int, help="override the number of training steps")
    t.add_argument("--out", help="output directory (default: the package's reference/weights/)")
    t.set_defaults(func=cmd)
