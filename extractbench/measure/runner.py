"""Run a scenario's grid of cells: endpoints up, campaigns through the oracle, students trained
on the harvest, scored on held-out items, one :class:`CellRecord` per cell.

The run lives in ``RESULTS/runs/<run-id>/``: ``records.jsonl`` (append-only),
``harvest/<cell>.jsonl`` (one append-only harvest log per cell; a re-run resumes it),
``eval/`` (the evaluator's own logs for teacher scores), ``audit/`` (defense events),
``run.log`` (what happened, with the traceback of every failed cell) and ``scenario.yaml``
(a copy).

Resume: running the same run id again measures only the cells without an ``ok`` record (an
errored or skipped cell is measured again; a cell cut off mid-measurement resumes its harvest
file, whose spend counts against its budget). A run id that holds another scenario's cells is
refused. A torn last line of ``records.jsonl`` is repaired first (:mod:`.recorder`).

The parts: :mod:`~extractbench.config.plan` (the cells), :mod:`.fleet` (endpoints and keys),
:mod:`.baselines` (teacher, base and defended scores), :mod:`.cell` (one measurement),
:mod:`.recorder` (records.jsonl), :mod:`~extractbench.config.gates` (thresholds).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from extractbench.config.gates import GateBook
from extractbench.config.plan import Cell, grid
from extractbench.config.scenario import Scenario, scenario_hash
from extractbench.logs.records import CellRecord
from extractbench.measure.baselines import Baselines
from extractbench.measure.cell import CellRunner
from extractbench.measure.fleet import Fleet, RunError
from extractbench.measure.progress import Progress
from extractbench.measure.recorder import Recorder
from extractbench.measure.tasks import TaskBank

__all__ = ["Cell", "RunError", "RunResult", "Runner", "grid", "iter_run", "new_run_id",
           "run_scenario"]

LOG_FILE = "run.log"


@dataclass
class RunResult:
    """A finished run: where it is, its records (in cell order), the gates that failed."""

    run_dir: Path
    records: list[CellRecord]
    gate_failures: list[str] = field(default_factory=list)
    directions: list[Any] = field(default_factory=list)
    """The verdicts on the scenario's ``directions`` (:class:`~extractbench.config.directions.
    Verdict`), when the whole grid ran."""

    @property
    def ok(self) -> bool:
        """No gate failed and no cell errored."""
        return not self.gate_failures and all(r.status != "error" for r in self.records)


_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_id(run_id: str) -> str:
    """A run id names a folder under ``RESULTS/runs``: letters, digits, ``.``, ``_`` and ``-``,
    starting with a letter or digit (so never ``..`` nor a path); else :class:`RunError`."""
    if not _RUN_ID.fullmatch(run_id):
        raise RunError(f"--run-id: {run_id!r} is not a run id (use 1-128 letters, digits, '.', "
                       "'_' or '-', starting with a letter or digit)")
    return run_id


def new_run_id(sc: Scenario, sc_hash: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{sc.name}-{sc_hash[:8]}"


class Runner:
    """Holds a scenario's endpoints open while its cells run. Use as a context manager."""

    def __init__(self, scenario: Scenario, path: Path, results_dir: Path,
                 run_id: str | None = None, progress: Progress | None = None) -> None:
        self.sc = scenario
        self.path = path
        self.hash = scenario_hash(scenario)
        self.run_id = check_run_id(run_id) if run_id is not None \
            else new_run_id(scenario, self.hash)
        self.run_dir = results_dir / "runs" / self.run_id
        self.progress = progress or Progress(enabled=False)
        self.recorder = Recorder(self.run_dir)
        self.gates = GateBook(scenario.gates)
        self.tasks = TaskBank(scenario)
        self._stack = ExitStack()
        self.finished: dict[str, CellRecord] = {}
        """Cells this run directory already holds an ``ok`` record of (filled on enter)."""
        self.fleet = Fleet(scenario, path, self.run_dir, self.tasks, self._stack)
        self.baselines = Baselines(scenario, self.fleet, self.tasks, self.run_dir, self.run_id)
        self._cells = CellRunner(scenario, path, self.hash, self.run_id, self.run_dir,
                                 self.fleet, self.tasks, self.baselines, self.progress)

    def cells(self) -> list[Cell]:
        return grid(self.sc)

    def __enter__(self) -> Runner:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "harvest").mkdir(exist_ok=True)
        (self.run_dir / "eval").mkdir(exist_ok=True)
        copy = self.run_dir / "scenario.yaml"
        if not copy.exists() and self.path.exists():
            shutil.copyfile(self.path, copy)
        self._stack.enter_context(_RunLog(self.run_dir / LOG_FILE))
        self.recorder.open()
        self.finished = self.recorder.finished()
        other = {r.provenance.scenario_hash for r in self.finished.values()} - {self.hash}
        if other:
            self._stack.close()
            raise RunError(f"--run-id: run {self.run_id!r} holds cells of another scenario "
                           f"(sha256 {sorted(other)[0][:12]}, this one {self.hash[:12]}); "
                           "resume it with that scenario or pick another run id")
        try:
            self.fleet.start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def run_cell(self, cell: Cell) -> CellRecord:
        """Measure one cell (see :class:`~extractbench.measure.cell.CellRunner`)."""
        return self._cells.run_cell(cell)

    def check_gates(self, record: CellRecord) -> list[str]:
        """The gates ``record`` fails (``beats`` pairs once both cells are done)."""
        return self.gates.check(record)


class _RunLog:
    """Send the ``extractbench`` logger to the run's log file while the run is open."""

    def __init__(self, path: Path) -> None:
        self.handler = logging.FileHandler(path, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.logger = logging.getLogger("extractbench")

    def __enter__(self) -> None:
        self.logger.addHandler(self.handler)
        if self.logger.level == logging.NOTSET or self.logger.level > logging.INFO:
            self.logger.setLevel(logging.INFO)

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()


def iter_run(runner: Runner, cells: list[Cell],
             on_record: Callable[[CellRecord], None] | None = None) -> Iterator[CellRecord]:
    """Run cells in order, appending each record to the run's records.jsonl. A cell the run
    directory already holds an ``ok`` record of is not measured again: its record is yielded
    as it was (resume)."""
    log = logging.getLogger("extractbench.measure")
    for cell in cells:
        if cell.id in runner.finished:
            record = runner.finished[cell.id]
            log.info("cell %s: already recorded, not measured again", cell.id)
        else:
            log.info("cell %s: start", cell.id)
            record = runner.run_cell(cell)
            runner.recorder.append(record)
            log.info("cell %s: %s", cell.id, record.status)
        runner.progress.cell_done(record)
        if on_record is not None:
            on_record(record)
        yield record


def run_scenario(sc: Scenario, path: Path, results_dir: Path, run_id: str | None = None,
                 only: str | None = None, progress: bool = True,
                 fail_fast: bool = False) -> RunResult:
    """Run every cell (or those whose id contains ``only``) and return the records."""
    with Progress(enabled=progress) as prog:
        runner = Runner(sc, path, results_dir, run_id, prog)
        cells = [c for c in runner.cells() if only is None or only in c.id]
        if not cells:
            raise RunError(f"{path}: no cell id contains {only!r}")
        prog.start_run(len(cells))
        records: list[CellRecord] = []
        failures: list[str] = []
        verdicts: list[Any] = []
        with runner:
            for record in iter_run(runner, cells):
                records.append(record)
                failures.extend(runner.check_gates(record))
                if fail_fast and (record.status == "error" or failures):
                    break
            else:
                if only is None and sc.directions:
                    verdicts = judge_directions(sc, runner.run_dir, records)
                    failures.extend(f"direction {v.text()}" for v in verdicts if not v.holds)
        return RunResult(runner.run_dir, records, failures, verdicts)


def judge_directions(sc: Scenario, run_dir: Path, records: list[CellRecord]) -> list[Any]:
    """The verdicts on ``sc.directions`` from the whole grid's records, also written to the
    run's ``directions.json``."""
    from extractbench.config.directions import judge_all

    verdicts = judge_all(sc.directions, records)
    (run_dir / "directions.json").write_text(
        json.dumps([v.as_dict() for v in verdicts], indent=2, sort_keys=True) + "\n",
        encoding="utf-8")
    return verdicts
