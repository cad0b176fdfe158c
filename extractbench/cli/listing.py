"""``extractbench list KIND``: the registered plugins and their parameters, or the reference
models."""

from __future__ import annotations

import argparse
from typing import Any

from extractbench.cli.common import EXIT_OK


def cmd(args: argparse.Namespace) -> int:
    from extractbench.registry import Registry

    regs: dict[str, Registry[object]] = {}
    if args.kind == "attacks":
        from extractbench.attacks import ATTACKS

        regs["attacks"] = ATTACKS  # type: ignore[assignment]
    elif args.kind == "students":
        from extractbench.students import STUDENTS

        regs["students"] = STUDENTS  # type: ignore[assignment]
    elif args.kind == "tasks":
        from extractbench.tasks import TASKS

        regs["tasks"] = TASKS  # type: ignore[assignment]
    elif args.kind == "defenses":
        from extractbench.defenses import DEFENSES

        regs["defenses"] = DEFENSES  # type: ignore[assignment]
    elif args.kind == "models":
        from extractbench.reference.teachers import SPECS, available

        have = set(available())
        for name, spec in sorted(SPECS.items()):
            mark = "" if name in have else "  [weights missing: run train-reference]"
            print(f"{name:20s} {spec.description}{mark}")
        return EXIT_OK
    for reg in regs.values():
        for entry in reg.entries():
            print(f"{entry.name:20s} {entry.description}")
            for line in entry.params_help():  # one indented line per parameter
                print(line)
    return EXIT_OK


def register(sub: Any) -> None:
    ls = sub.add_parser("list", help="list registered attacks, defenses, students, tasks",
                        description="List registered names with a one-line description.")
    ls.add_argument("kind", choices=["attacks", "defenses", "students", "tasks", "models"])
    ls.set_defaults(func=cmd)
