"""``extractbench leaderboard [RUN_DIR...]``: the leaderboard from stored runs alone."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from extractbench.cli.common import EXIT_BAD_INPUT, EXIT_OK, err


def cmd(args: argparse.Namespace) -> int:
    from extractbench.report.frames import ResultsError, find_runs, load_records
    from extractbench.report.leaderboard import write_leaderboard

    runs = [Path(d) for d in args.run_dirs] or find_runs(Path(args.results))[:1]
    if not runs:
        err(f"{args.results}: no runs found (run `extractbench run SCENARIO` first)")
        return EXIT_BAD_INPUT
    try:
        records = load_records(runs)
    except (ResultsError, FileNotFoundError) as exc:
        err(str(exc))
        return EXIT_BAD_INPUT
    out = Path(args.out or args.results)
    for p in write_leaderboard(records, out, utility_threshold=args.min_utility):
        print(f"wrote {p}")
    return EXIT_OK


def register(sub: Any) -> None:
    lb = sub.add_parser("leaderboard", help="write the leaderboard from stored runs",
                        description="Compute the leaderboard and plots from run directories "
                        "alone (several runs merge). Default: the latest run under RESULTS.")
    lb.add_argument("run_dirs", nargs="*", help="run directories (results/runs/<run-id>)")
    lb.add_argument("--results", default="results", help="results directory (default: results)")
    lb.add_argument("--out", help="output directory (default: the results directory)")
    lb.add_argument("--min-utility", type=float, default=0.9, metavar="U",
                    help="rank only profiles keeping at least this utility (default 0.9)")
    lb.set_defaults(func=cmd)
