"""The run's ``records.jsonl``: one JSON line per finished cell, appended and flushed, used by
the runner and the pytest plugin alike."""

from __future__ import annotations

from pathlib import Path

from extractbench.logs.records import CellRecord

__all__ = ["RECORDS_FILE", "Recorder"]

RECORDS_FILE = "records.jsonl"


class Recorder:
    """Appends each record to ``RUN_DIR/records.jsonl``."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / RECORDS_FILE

    def append(self, record: CellRecord) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(record.model_dump_json() + "\n")
