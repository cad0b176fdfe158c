"""``extractbench leaderboard [RUN_DIR...]``: the leaderboard from stored runs alone."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extractbench.cli.common import EXIT_BAD_INPUT, EXIT_OK, err
from extractbench.errors import ExtractbenchError

if TYPE_CHECKING:
    from extractbench.config.scenario import Ranking

SCENARIO_COPY = "scenario.yaml"
"""The copy of its scenario a run directory holds."""


class RankingError(ExtractbenchError, ValueError):
    """A run's copy of its scenario whose ``ranking:`` cannot be read (one line)."""


def run_ranking(runs: Sequence[Path]) -> Ranking | None:
    """The ``ranking:`` of the runs' scenarios (each run directory's copy of its scenario),
    merged (:func:`~extractbench.report.requirement.merge_rankings`); ``None`` when none
    declares one. A copy that cannot be read raises :class:`RankingError` with one line."""
    from pydantic import ValidationError

    from extractbench.config.scenario import Ranking
    from extractbench.config.source import SourceError, read_yaml
    from extractbench.report.requirement import merge_rankings

    found: list[Ranking | None] = []
    for run in runs:
        path = (run if run.is_dir() else run.parent) / SCENARIO_COPY
        if not path.is_file():
            continue
        try:
            data = read_yaml(path)
            value = data.get("ranking") if isinstance(data, dict) else None
            found.append(None if value is None else Ranking.model_validate(value))
        except SourceError as exc:
            raise RankingError(exc.lines[0]) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in ("ranking", *first["loc"]))
            raise RankingError(f"{path}: {where}: {first['msg']}") from None
    return merge_rankings(found)


def cmd(args: argparse.Namespace) -> int:
    from extractbench.report.frames import ResultsError, find_runs, load_records
    from extractbench.report.leaderboard import write_leaderboard

    runs = [Path(d) for d in args.run_dirs] or find_runs(Path(args.results))[:1]
    if not runs:
        err(f"{args.results}: no runs found (run `extractbench run SCENARIO` first)")
        return EXIT_BAD_INPUT
    try:
        records = load_records(runs)
        ranking = run_ranking(runs)
    except (ResultsError, FileNotFoundError, RankingError) as exc:
        err(str(exc))
        return EXIT_BAD_INPUT
    out = Path(args.out or args.results)
    for p in write_leaderboard(records, out, utility_threshold=args.min_utility,
                               ranking=ranking):
        print(f"wrote {p}")
    return EXIT_OK


def register(sub: Any) -> None:
    lb = sub.add_parser("leaderboard", help="write the leaderboard from stored runs",
                        description="Compute the leaderboard and plots from run directories "
                        "alone (several runs merge). Default: the latest run under RESULTS. "
                        "Profiles are ranked on the `ranking:` of the runs' scenarios "
                        "(their scenario.yaml copies), or by default on what the undefended "
                        "profile was measured on.")
    lb.add_argument("run_dirs", nargs="*", help="run directories (results/runs/<run-id>)")
    lb.add_argument("--results", default="results", help="results directory (default: results)")
    lb.add_argument("--out", help="output directory (default: the results directory)")
    lb.add_argument("--min-utility", type=float, default=0.9, metavar="U",
                    help="rank only profiles keeping at least this utility (default 0.9)")
    lb.set_defaults(func=cmd)
