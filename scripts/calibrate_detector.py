"""Detection calibrated on benign traffic, from stored runs: for every cell of a profile with a
``detector``, each test's TPR at 1% and 5% FPR (thresholds set on benign calibration streams),
the realised FPR on the cell's own benign users, ROC AUC and queries to detection at the 5%
threshold (``extractbench.measure.calibration``). Runs on a simulated clock only.

    python scripts/calibrate_detector.py results/runs/<run-id> [...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from extractbench.config.scenario import load_scenario
from extractbench.logs.harvest import HarvestLog
from extractbench.measure.calibration import (
    benign_streams,
    calibrate,
    cohort_plans,
    stream_of_harvest,
)
from extractbench.measure.fleet import Keys
from extractbench.measure.tasks import TaskBank


def main(run_dirs: list[str]) -> int:
    print("| cell | test | TPR@1% | FPR@1% | TPR@5% | FPR@5% | AUC | AUC (tested users) "
          "| queries to 5% |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in map(Path, run_dirs):
        sc = load_scenario(run / "scenario.yaml")
        bank = TaskBank(sc)
        keys = Keys.mint(1, {n: c.users for n, c in sc.benign_traffic.plan().items()})
        plans = cohort_plans(sc.benign_traffic, keys.cohort_of)
        for line in (run / "records.jsonl").read_text().splitlines():
            r = json.loads(line)
            ep = sc.endpoints[r["endpoint"]]
            det = next((d for d in ep.defenses if d.name == "detector"), None)
            if det is None or r.get("status") != "ok" or r.get("sim_s") is None:
                continue
            slug = Path(r["harvest_path"]).name
            attacker = stream_of_harvest(HarvestLog.read(run / r["harvest_path"]))
            benign_log = run / "benign" / slug
            benign = benign_streams(json.loads(x) for x in benign_log.read_text().splitlines())
            task = bank.get(r["task"], r["seed"])
            figs = calibrate(dict(det.params), attacker, benign, plans,
                             [i.prompt for i in task.split("benign")], until=r["sim_s"],
                             cap=max(map(len, attacker.values()), default=0), seed=r["seed"])
            for test, f in figs.items():
                def pct(v: object) -> str:
                    return "-" if v is None else f"{100 * float(v):.0f}%"  # type: ignore[arg-type]
                print(f"| {r['cell_id']} | {test} | {pct(f['tpr_1'])} | {pct(f['fpr_1'])} | "
                      f"{pct(f['tpr_5'])} | {pct(f['fpr_5'])} | "
                      f"{'-' if f['auc'] is None else format(f['auc'], '.2f')} | "
                      f"{'-' if f['auc_tested'] is None else format(f['auc_tested'], '.2f')}"
                      f" ({f['benign_tested']}) | "
                      f"{f['queries_5'] if f['queries_5'] is not None else 'not detected'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
