"""The kill -9 table: run one undefended reference cell uninterrupted, then again with SIGKILL
at random points (resuming after each), and compare.

    .venv/bin/python scripts/kill_resume.py --trials 4 --max-kills 3
    .venv/bin/python scripts/kill_resume.py --only reference/knowledge/random-pool/q300

Kill points are drawn from the answers in the harvest (a kill once it holds n answers, n
uniform over the budget) and, in half the trials, once the campaign is done (while the
student trains). Prints one row per trial: kills (and where they landed), attempts, queries
in flight at the kills (served, answer lost, charged on resume), attempts sent and queries
charged over all attempts (and the budget), answers and distinct prompts, whether every answer
is the uninterrupted run's (same index, prompt and text) and whether every metric equals the
uninterrupted run's. Results go to a temporary directory.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from extractbench.testing.crash import KillPoint, run_with_kills, summarize


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/ci.yaml")
    ap.add_argument("--only", default="reference/arithmetic/random-pool/q300/")
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--max-kills", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    scenario = Path(args.scenario).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        t0 = time.monotonic()
        whole = run_with_kills(scenario, results, "whole", [], only=args.only)
        wall = time.monotonic() - t0
        if whole.exit_code != 0:
            print(whole.stderr, file=sys.stderr)
            return 1
        ref = summarize(results / "runs" / "whole")
        print(f"cell {args.only}: uninterrupted {wall:.0f} s, {ref['charged']} queries charged "
              f"(budget {ref['budget']}), {ref['answers']} answers, "
              f"{ref['distinct_prompts']} distinct prompts, transfer "
              f"{ref['metrics']['transfer']['value']:.3f}")
        print("| trial | kills (answers in the harvest at each) | attempts | in flight at the "
              "kills | sent / charged / budget | answers | distinct prompts "
              "| answers ⊆ uninterrupted | metrics = uninterrupted |")
        print("|---|---|---|---|---|---|---|---|---|")
        bad = 0
        for t in range(args.trials):
            n = rng.randint(1, args.max_kills)
            counts = sorted(rng.sample(range(1, max(2, ref["answers"])), n))
            points: list[KillPoint] = [("responses", float(c)) for c in counts]
            if t % 2:
                points.append(("attack-done", 0.0))
            trial = run_with_kills(scenario, results, f"t{t}", points, only=args.only)
            if trial.exit_code != 0:
                print(f"| {t} | trial failed: exit {trial.exit_code}: {trial.stderr[-300:]} |")
                bad += 1
                continue
            got = summarize(results / "runs" / f"t{t}")
            subset = set(got["harvest"]) <= set(ref["harvest"])
            same_m = got["metrics"] == ref["metrics"]
            budget = got["budget"] or 1 << 60
            ok = (subset and got["sent"] == got["charged"] <= budget
                  and got["answers"] >= ref["answers"] - got["interrupted"]
                  and (same_m or got["interrupted"] > 0))
            bad += not ok
            diff = [k for k in ref["metrics"] if got["metrics"][k] != ref["metrics"][k]]
            print(f"| {t} | {trial.kills} ({'; '.join(trial.killed_at)}) | {trial.attempts} "
                  f"| {got['interrupted']} | {got['sent']} / {got['charged']} / {got['budget']} "
                  f"| {got['answers']} | {got['distinct_prompts']} | {'yes' if subset else 'NO'} "
                  f"| {'yes' if same_m else 'no: ' + ', '.join(diff)} |")
        print(f"\n{bad} trial(s) broke a rule (answers not the uninterrupted run's, an attempt "
              "sent but not charged, over budget, more answers lost than were in flight, or "
              "other metrics with nothing in flight)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
