"""The run store on disk: run directories of ``records.jsonl`` read back into records.

A run directory ``results/runs/<run-id>/`` holds ``records.jsonl``, one
:class:`~extractbench.logs.records.CellRecord` JSON per line, append-only. A cell re-run appends a
new line; the last line for a ``cell_id`` wins. A crash mid-write can leave the last line
truncated: it is skipped with a warning on stderr. Any other bad line is a
:class:`ResultsError` naming ``FILE:LINE``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from extractbench.errors import ExtractbenchError
from extractbench.logs.records import CellRecord

__all__ = ["RECORDS_FILE", "ResultsError", "find_runs", "latest_run", "load_records"]

RECORDS_FILE = "records.jsonl"
"""The name of a run directory's records file."""


class ResultsError(ExtractbenchError, ValueError):
    """A ``records.jsonl`` line that cannot be read; the message starts with ``FILE:LINE:``."""


def _records_path(run: Path) -> Path:
    return run if run.is_file() else run / RECORDS_FILE


def _read_file(path: Path) -> list[CellRecord]:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such records file (is this a run directory?)")
    lines = path.read_text(encoding="utf-8").splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records: list[CellRecord] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"{path}:{i + 1}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == last:
                print(f"warning: {where}: skipping truncated last line ({exc.msg})",
                      file=sys.stderr)
                continue
            raise ResultsError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") \
                from None
        try:
            records.append(CellRecord.model_validate(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "<record>"
            raise ResultsError(
                f"{where}: not a CellRecord: field {field!r}: {first['msg']} "
                f"({exc.error_count()} error(s); is the file from another extractbench version?)"
            ) from None
    return records


def load_records(run_dirs: Sequence[Path]) -> list[CellRecord]:
    """All cell records of the given run directories (or ``records.jsonl`` files).

    Within and across runs the last record for a ``cell_id`` wins, in file order and then in
    the order the runs are given; the result keeps first-appearance order.
    """
    latest: dict[str, CellRecord] = {}
    for run in run_dirs:
        for record in _read_file(_records_path(Path(run))):
            latest[record.cell_id] = record
    return list(latest.values())


def find_runs(results_dir: Path) -> list[Path]:
    """Run directories with a ``records.jsonl`` under ``results_dir/runs`` (or ``results_dir``
    itself when it has no ``runs``), latest first (by records file mtime, then name)."""
    results_dir = Path(results_dir)
    root = results_dir / "runs" if (results_dir / "runs").is_dir() else results_dir
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if (p / RECORDS_FILE).is_file()]
    return sorted(runs, key=lambda p: ((p / RECORDS_FILE).stat().st_mtime, p.name), reverse=True)


def latest_run(results_dir: Path) -> Path:
    """The most recent run directory; :class:`FileNotFoundError` when there is none."""
    runs = find_runs(results_dir)
    if not runs:
        raise FileNotFoundError(
            f"{results_dir}: no run directories with {RECORDS_FILE} (run a scenario first)"
        )
    return runs[0]
