"""``extractbench run SCENARIO``: every cell of a scenario, then the leaderboard."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from extractbench.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_CELL_ERRORS,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SKIPPED,
    err,
)


def cmd(args: argparse.Namespace) -> int:
    from extractbench.config.scenario import ScenarioError, load_scenario
    from extractbench.measure.runner import RunError, run_scenario

    try:
        sc = load_scenario(args.scenario)
    except ScenarioError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return EXIT_BAD_INPUT
    from extractbench.config.costs import SpendError, check_spend

    try:
        estimate = check_spend(sc)
    except SpendError as exc:
        err(str(exc))
        return EXIT_BAD_INPUT
    print(f"extractbench: estimated spend: {estimate.summary()}", file=sys.stderr)
    try:
        result = run_scenario(
            sc, Path(args.scenario), results_dir=Path(args.results), run_id=args.run_id,
            only=args.only, progress=not args.quiet, fail_fast=args.fail_fast,
        )
    except RunError as exc:
        err(str(exc))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err("interrupted; harvested data so far is kept under the run directory")
        return 130
    from extractbench.report.leaderboard import write_leaderboard

    paths = write_leaderboard(result.records, Path(args.results),
                              utility_threshold=args.min_utility, ranking=sc.ranking)
    print(f"run: {result.run_dir}")
    for p in paths:
        print(f"wrote {p}")
    for verdict in result.directions:
        print(f"direction {verdict.text()}", file=sys.stderr)
    for line in result.gate_failures:
        err(f"gate failed: {line}")
    errors = [r for r in result.records if r.status == "error"]
    for r in errors:
        err(f"cell {r.cell_id} failed: {r.error}")
    return exit_code(result.records, result.gate_failures, args.allow_skipped)


def exit_code(records: list[Any], gate_failures: list[str], allow_skipped: bool) -> int:
    """See :data:`extractbench.cli.common.EXIT_OK`: an error, then a gate, then a skip."""
    skipped = [r for r in records if r.status == "skipped"]
    if any(r.status == "error" for r in records):
        return EXIT_CELL_ERRORS
    if gate_failures:
        return EXIT_FAILED
    if skipped and not allow_skipped:
        err(f"{len(skipped)} of {len(records)} cells were skipped ({skipped[0].error}); pass "
            "--allow-skipped if that is expected")
        return EXIT_SKIPPED
    return EXIT_OK


def register(sub: Any) -> None:
    r = sub.add_parser("run", help="run every cell of a scenario and write the leaderboard",
                       description="Start the scenario's endpoints (the embedded reference "
                       "endpoint on loopback, or remote endpoints by API key), run every cell "
                       "with a progress display, store the run under RESULTS/runs/<run-id>/ and "
                       "write RESULTS/leaderboard.{md,csv} and plots. Exit 0: all measured, every "
                       "gate passed; 1: a gate failed; 2: bad input; 3: a cell errored; 4: "
                       "cells skipped without --allow-skipped.")
    r.add_argument("scenario", help="scenario YAML file, e.g. scenarios/ci.yaml")
    r.add_argument("--results", default="results", help="results directory (default: results)")
    r.add_argument("--run-id", help="name of the run directory (default: timestamp + hash)")
    r.add_argument("--only", help="run only cells whose id contains this text")
    r.add_argument("--quiet", action="store_true", help="no progress display")
    r.add_argument("--fail-fast", action="store_true", help="stop at the first failing cell")
    r.add_argument("--allow-skipped", action="store_true",
                   help="exit 0 even when cells are skipped (an endpoint's key is not set)")
    r.add_argument("--min-utility", type=float, default=0.9, metavar="U",
                   help="rank only profiles keeping at least this utility (default 0.9)")
    r.set_defaults(func=cmd)
