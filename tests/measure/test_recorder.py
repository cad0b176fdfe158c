"""records.jsonl after a crash: a torn last line is repaired before the next append, so no
complete record is lost and the next one is not swallowed."""

from __future__ import annotations

from pathlib import Path

from extractbench.logs.store import load_records
from extractbench.measure.recorder import Recorder, repair_torn_tail
from extractbench.testing.records import cell_record


def _write(run: Path, *lines: bytes) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    path = run / "records.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def test_a_torn_tail_is_cut_kept_aside_and_the_next_record_reads_back(tmp_path: Path) -> None:
    a, b = cell_record(attack="a"), cell_record(attack="b")
    full = a.model_dump_json().encode() + b"\n"
    torn = b.model_dump_json().encode()[:57]
    path = _write(tmp_path / "run", full, torn)
    rec = Recorder(tmp_path / "run")
    rec.open()
    assert path.read_bytes() == full
    assert (tmp_path / "run" / "records.jsonl.torn").read_bytes() == torn + b"\n"
    rec.append(b)
    assert [r.cell_id for r in load_records([tmp_path / "run"])] == [a.cell_id, b.cell_id]


def test_a_complete_tail_without_its_newline_is_kept(tmp_path: Path) -> None:
    a = cell_record(attack="a")
    path = _write(tmp_path / "run", a.model_dump_json().encode())
    assert repair_torn_tail(path) == b""
    assert path.read_bytes() == a.model_dump_json().encode() + b"\n"
    assert not (tmp_path / "run" / "records.jsonl.torn").exists()


def test_a_file_that_is_one_torn_line_becomes_empty(tmp_path: Path) -> None:
    path = _write(tmp_path / "run", b'{"cell_id": "x", "sta')
    assert repair_torn_tail(path) == b'{"cell_id": "x", "sta'
    assert path.read_bytes() == b""


def test_finished_is_the_last_ok_record_per_cell(tmp_path: Path) -> None:
    ok = cell_record(attack="a")
    again_error = cell_record(attack="a", transfer=None, status="error", error="boom")
    other_ok = cell_record(attack="b")
    skipped = cell_record(attack="c", transfer=None, status="skipped", error="no key")
    rec = Recorder(_write(tmp_path / "run").parent)
    for r in (ok, other_ok, again_error, skipped):
        rec.append(r)
    assert set(rec.finished()) == {other_ok.cell_id}
