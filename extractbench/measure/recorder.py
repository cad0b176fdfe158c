"""The run's ``records.jsonl``: one JSON line per finished cell, appended and flushed, used by
the runner and the pytest plugin alike.

A crash can leave the file's last line torn (written without its newline). Opening the
recorder repairs that before anything is appended, so a torn line can never swallow the next
record: a tail that is a complete record gets its newline; anything else is cut off and kept
byte for byte in ``records.jsonl.torn`` (no complete line is lost). :meth:`Recorder.finished`
is what a resumed run skips.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from pydantic import ValidationError

from extractbench.logs.records import CellRecord
from extractbench.logs.store import RECORDS_FILE

__all__ = ["RECORDS_FILE", "Recorder", "repair_torn_tail"]

log = logging.getLogger("extractbench.measure")


def repair_torn_tail(path: Path) -> bytes:
    """Make ``path`` end at a line boundary; returns the bytes cut off (empty when none).

    A tail without a newline that parses as JSON is kept (its newline is added); any other
    tail is appended to ``PATH.torn`` and removed from ``path``."""
    if not path.exists():
        return b""
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return b""
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return b""
        f.seek(0)
        data = f.read()
        cut = data.rfind(b"\n") + 1  # 0 when the whole file is one torn line
        tail = data[cut:]
        try:
            json.loads(tail)
        except (ValueError, UnicodeDecodeError):
            with path.with_name(path.name + ".torn").open("ab") as torn:
                torn.write(tail + b"\n")
            f.truncate(cut)
            log.warning("%s: cut a torn last line of %d bytes (kept in %s.torn)", path,
                        len(tail), path.name)
            return tail
        f.write(b"\n")
        return b""


class Recorder:
    """Appends each record to ``RUN_DIR/records.jsonl``."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / RECORDS_FILE

    def open(self) -> None:
        """Repair a torn last line left by a crash (see the module docstring)."""
        repair_torn_tail(self.path)

    def finished(self) -> dict[str, CellRecord]:
        """The cells already measured in this run directory: the last ``ok`` record per cell
        id (a cell that errored or was skipped is measured again)."""
        out: dict[str, CellRecord] = {}
        if not self.path.exists():
            return out
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                record = CellRecord.model_validate_json(line)
            except ValidationError:
                continue  # the reader (logs.store) reports bad lines with FILE:LINE
            if record.status == "ok":
                out[record.cell_id] = record
            else:
                out.pop(record.cell_id, None)
        return out

    def append(self, record: CellRecord) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(record.model_dump_json() + "\n")
            f.flush()
            os.fsync(f.fileno())
