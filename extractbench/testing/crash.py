"""Kill -9 a real ``extractbench run`` and resume it, for the exactly-once tests and the kill
table (``scripts/kill_resume.py``).

:func:`run_with_kills` starts ``extractbench run SCENARIO --run-id ID`` in a subprocess,
sends it SIGKILL when each kill point is reached, runs the same command again after each
kill, and lets the last attempt finish. A kill point is

- ``("responses", n)``: the cell's harvest holds at least ``n`` answers (mid-campaign);
- ``("attack-done", 0)``: the run log says the campaign is done (training or scoring);
- ``("seconds", s)``: ``s`` seconds after the attempt started.

:func:`summarize` reads what the run left: its record, every harvest segment and the metrics
that must match an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from extractbench.logs.harvest import (
    ErrorEntry,
    HarvestLog,
    NoteEntry,
    ResponseEntry,
    SegmentEntry,
    SentEntry,
    spent_in,
)

__all__ = ["METRICS", "KillPoint", "Trial", "run_with_kills", "summarize"]

KillPoint = tuple[Literal["responses", "attack-done", "seconds"], float]

METRICS = ("teacher_score", "base_score", "student_score", "transfer", "fidelity", "queries",
           "input_tokens", "output_tokens", "items", "harvest_pairs", "stop_reason")
"""Record fields a resumed run must reproduce exactly."""


@dataclass
class Trial:
    """What one run with kills left."""

    kills: int = 0
    attempts: int = 0
    killed_at: list[str] = field(default_factory=list)
    """Where each kill landed (answers in the harvest then, and whether the attack was done)."""
    exit_code: int | None = None
    stderr: str = ""


def _harvest_state(run_dir: Path) -> tuple[int, int]:
    """Answers in the run's harvests, and how many times its log says a campaign ended."""
    answers = 0
    for path in (run_dir / "harvest").glob("*.jsonl"):
        text = path.read_text(encoding="utf-8", errors="replace")
        answers += text.count('"entry_type":"response"')
    log = run_dir / "run.log"
    done = (log.read_text(encoding="utf-8", errors="replace").count("campaign done")
            if log.exists() else 0)
    return answers, done


def _reached(point: KillPoint, run_dir: Path, started: float, done_before: int) -> bool:
    kind, value = point
    if kind == "seconds":
        return time.monotonic() - started >= value
    answers, done = _harvest_state(run_dir)
    return done > done_before if kind == "attack-done" else answers >= value


def run_with_kills(scenario: Path, results: Path, run_id: str, kills: list[KillPoint],
                   *, only: str | None = None, env: dict[str, str] | None = None,
                   timeout_s: float = 900) -> Trial:
    """Run (``--only`` when given), SIGKILL at each point in turn (resuming after each), then
    finish."""
    cmd = [sys.executable, "-m", "extractbench", "run", str(scenario), "--results",
           str(results), "--run-id", run_id, "--quiet", *(["--only", only] if only else [])]
    run_dir = results / "runs" / run_id
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    trial = Trial()
    pending = list(kills)
    deadline = time.monotonic() + timeout_s
    while True:
        trial.attempts += 1
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        point = pending.pop(0) if pending else None
        done_before = _harvest_state(run_dir)[1]
        killed = False
        while proc.poll() is None:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise TimeoutError(f"run {run_id} did not finish in {timeout_s} s")
            if point is not None and _reached(point, run_dir, started, done_before):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                answers, done = _harvest_state(run_dir)
                trial.kills += 1
                trial.killed_at.append(f"{answers} answers"
                                       + (", campaign done" if done > done_before else ""))
                killed = True
                break
            time.sleep(0.01)
        assert proc.stderr is not None
        trial.stderr = proc.stderr.read()
        proc.stderr.close()
        if not killed:
            trial.exit_code = proc.returncode
            return trial


def summarize(run_dir: Path) -> dict[str, Any]:
    """The run's one record's metrics, and what its harvest holds over all segments."""
    [line] = (run_dir / "records.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    [harvest] = sorted((run_dir / "harvest").glob("*.jsonl"))
    entries = HarvestLog.read(harvest)
    answers = [e for e in entries if isinstance(e, ResponseEntry)]
    return {
        "metrics": {k: record.get(k) for k in METRICS},
        "segments": sum(isinstance(e, SegmentEntry) for e in entries),
        "charged": spent_in(entries).queries,
        "sent": sum(isinstance(e, SentEntry) for e in entries),
        "interrupted": sum(isinstance(e, ErrorEntry) and e.error_type == "interrupted"
                           for e in entries),
        "answers": len(answers),
        "distinct_prompts": len({e.request.prompt for e in answers}),
        "harvest": sorted((e.index, e.key_id, e.request.prompt, e.response.text)
                          for e in answers),
        "notes": sum(isinstance(e, NoteEntry) for e in entries),
        "budget": record.get("budget", {}).get("queries"),
    }
