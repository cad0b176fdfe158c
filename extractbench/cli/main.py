"""The ``extractbench`` command line.

Every user-facing failure (bad scenario, unreachable endpoint, missing key) ends as one line on
stderr and a non-zero exit code: 2 for bad input, 1 for a run whose gates failed or whose
cells errored, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _err(msg: str) -> None:
    print(f"extractbench: {msg}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
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


def cmd_schema(args: argparse.Namespace) -> int:
    from extractbench.config.scenario import json_schema

    text = json.dumps(json_schema(), indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    else:
        print(text)
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
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


def cmd_run(args: argparse.Namespace) -> int:
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
        _err(str(exc))
        return EXIT_BAD_INPUT
    print(f"extractbench: estimated spend: {estimate.summary()}", file=sys.stderr)
    try:
        result = run_scenario(
            sc, Path(args.scenario), results_dir=Path(args.results), run_id=args.run_id,
            only=args.only, progress=not args.quiet, fail_fast=args.fail_fast,
        )
    except RunError as exc:
        _err(str(exc))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _err("interrupted; harvested data so far is kept under the run directory")
        return 130
    from extractbench.report.leaderboard import write_leaderboard

    paths = write_leaderboard(result.records, Path(args.results),
                              utility_threshold=args.min_utility)
    print(f"run: {result.run_dir}")
    for p in paths:
        print(f"wrote {p}")
    for line in result.gate_failures:
        _err(f"gate failed: {line}")
    errors = [r for r in result.records if r.status == "error"]
    for r in errors:
        _err(f"cell {r.cell_id} failed: {r.error}")
    return EXIT_FAILED if (result.gate_failures or errors) else EXIT_OK


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from extractbench.report.frames import ResultsError, find_runs, load_records
    from extractbench.report.leaderboard import write_leaderboard

    runs = [Path(d) for d in args.run_dirs] or find_runs(Path(args.results))[:1]
    if not runs:
        _err(f"{args.results}: no runs found (run `extractbench run SCENARIO` first)")
        return EXIT_BAD_INPUT
    try:
        records = load_records(runs)
    except (ResultsError, FileNotFoundError) as exc:
        _err(str(exc))
        return EXIT_BAD_INPUT
    out = Path(args.out or args.results)
    for p in write_leaderboard(records, out, utility_threshold=args.min_utility):
        print(f"wrote {p}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from extractbench.cli.serve import ServeError, serve_reference

    try:
        serve_reference(host=args.host, port=args.port, profile=args.profile,
                        models=args.model, keys=args.key, audit_log=args.audit_log)
    except ServeError as exc:
        _err(str(exc))
        return EXIT_BAD_INPUT
    return EXIT_OK


def cmd_train_reference(args: argparse.Namespace) -> int:
    from extractbench.reference.teachers import MODELS_DIR, SPECS, train_reference

    names = args.names or sorted(SPECS)
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        _err(f"unknown reference model {unknown[0]!r} (known: {', '.join(sorted(SPECS))})")
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else MODELS_DIR
    for name in names:
        train_reference(name, out, steps=args.steps)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="extractbench",
        description="Measure how well an LLM API endpoint resists capability extraction by "
        "distillation: run query campaigns, train students on the harvest, score them on "
        "held-out tasks, and rank the defended endpoints.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run every cell of a scenario and write the leaderboard",
                       description="Start the scenario's endpoints (the embedded reference "
                       "endpoint on loopback, or remote endpoints by API key), run every cell "
                       "with a progress display, store the run under RESULTS/runs/<run-id>/ and "
                       "write RESULTS/leaderboard.{md,csv} and plots. Exit 1 when a gate fails.")
    r.add_argument("scenario", help="scenario YAML file, e.g. scenarios/ci.yaml")
    r.add_argument("--results", default="results", help="results directory (default: results)")
    r.add_argument("--run-id", help="name of the run directory (default: timestamp + hash)")
    r.add_argument("--only", help="run only cells whose id contains this text")
    r.add_argument("--quiet", action="store_true", help="no progress display")
    r.add_argument("--fail-fast", action="store_true", help="stop at the first failing cell")
    r.add_argument("--min-utility", type=float, default=0.9, metavar="U",
                   help="rank only profiles keeping at least this utility (default 0.9)")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("serve", help="run the reference endpoint in the foreground",
                       description="Serve the reference teacher models over the OpenAI and "
                       "Anthropic HTTP APIs (/v1/models, /v1/chat/completions, /v1/completions, "
                       "/v1/messages). Prints the base URL and the accepted keys' ids.")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    s.add_argument("--profile", help="YAML file with a `defenses:` list (default: undefended)")
    s.add_argument("--model", action="append", help="reference model to serve (repeatable; "
                   "default: all shipped)")
    s.add_argument("--key", action="append",
                   help="accepted API key as ID=KEY (repeatable; default: one key "
                   "'local'=sk-local printed at start)")
    s.add_argument("--audit-log", help="write defense audit events to this JSONL file")
    s.set_defaults(func=cmd_serve)

    v = sub.add_parser("validate", help="check scenario files",
                       description="Validate scenario files; prints every problem as "
                       "`FILE: field.path: problem (hint)`. Exit 2 on any problem.")
    v.add_argument("files", nargs="+", help="scenario YAML files")
    v.set_defaults(func=cmd_validate)

    sc = sub.add_parser("schema", help="print the scenario JSON Schema",
                        description="Print the JSON Schema of scenario files (for editors).")
    sc.add_argument("-o", "--output", help="write to this file instead of stdout")
    sc.set_defaults(func=cmd_schema)

    ls = sub.add_parser("list", help="list registered attacks, defenses, students, tasks",
                        description="List registered names with a one-line description.")
    ls.add_argument("kind", choices=["attacks", "defenses", "students", "tasks", "models"])
    ls.set_defaults(func=cmd_list)

    lb = sub.add_parser("leaderboard", help="write the leaderboard from stored runs",
                        description="Compute the leaderboard and plots from run directories "
                        "alone (several runs merge). Default: the latest run under RESULTS.")
    lb.add_argument("run_dirs", nargs="*", help="run directories (results/runs/<run-id>)")
    lb.add_argument("--results", default="results", help="results directory (default: results)")
    lb.add_argument("--out", help="output directory (default: the results directory)")
    lb.add_argument("--min-utility", type=float, default=0.9, metavar="U",
                    help="rank only profiles keeping at least this utility (default 0.9)")
    lb.set_defaults(func=cmd_leaderboard)

    from extractbench.cli.proxy import add_proxy_command

    add_proxy_command(sub)

    t = sub.add_parser("train-reference", help="reproduce the shipped reference teachers",
                       description="Train the reference teacher models from generated ground "
                       "truth and write their safetensors weights (CPU, a few minutes each).")
    t.add_argument("names", nargs="*", help="models to train (default: all)")
    t.add_argument("--steps", type=int, help="override the number of training steps")
    t.add_argument("--out", help="output directory (default: the package's reference/weights/)")
    t.set_defaults(func=cmd_train_reference)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
