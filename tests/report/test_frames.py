"""Reading the results store: records.jsonl parsing, run discovery, flattened frames."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from extractbench.logs.records import CellRecord, Interval, ItemScores
from extractbench.report.frames import (
    ResultsError,
    find_runs,
    latest_run,
    load_records,
    records_frame,
    seed_means,
)
from extractbench.testing.records import cell_record, provenance


def record(profile: str = "p", attack: str = "a", queries: int = 100, seed: int = 0,
           transfer: float | None = 0.5, run_id: str = "run-1", **fields: object
           ) -> CellRecord:
    """A synthetic ok cell (teacher 0.9, base 0.1) with transfer ± 0.1; ``fields`` override."""
    return cell_record(
        profile, attack, queries, transfer, seed=seed, run_id=run_id, teacher=0.9, base=0.1,
        half_width=0.1, tokens_per_query=(10, 2),
        provenance=provenance(scenario_hash="f" * 64, git_sha="0123456789abcdef"), **fields)


def write_run(root: Path, name: str, records: list[CellRecord], tail: str = "") -> Path:
    run = root / "runs" / name
    run.mkdir(parents=True)
    lines = "".join(r.model_dump_json() + "\n" for r in records)
    (run / "records.jsonl").write_text(lines + tail, encoding="utf-8")
    return run


def test_last_line_for_a_cell_wins(tmp_path: Path) -> None:
    run = write_run(tmp_path, "r", [record(transfer=0.2), record(attack="b"),
                                    record(transfer=0.7)])
    loaded = load_records([run])
    assert [(r.attack, r.transfer.value if r.transfer else None) for r in loaded] == [
        ("a", 0.7), ("b", 0.5)]


def test_truncated_last_line_is_skipped_with_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = write_run(tmp_path, "r", [record(), record(attack="b")], tail='{"run_id": "ru')
    loaded = load_records([run])
    assert len(loaded) == 2
    assert f"{run / 'records.jsonl'}:3" in capsys.readouterr().err


def test_malformed_middle_line_names_file_and_line(tmp_path: Path) -> None:
    run = write_run(tmp_path, "r", [record()])
    path = run / "records.jsonl"
    path.write_text(path.read_text() + "{not json\n" + record(attack="b").model_dump_json()
                    + "\n")
    with pytest.raises(ResultsError, match=rf"^{path}:2: not valid JSON"):
        load_records([run])


def test_schema_violation_names_file_line_and_field(tmp_path: Path) -> None:
    run = write_run(tmp_path, "r", [record()])
    path = run / "records.jsonl"
    bad = record(attack="b").model_dump_json().replace('"status":"ok"', '"status":"maybe"')
    path.write_text(bad + "\n" + path.read_text())
    with pytest.raises(ResultsError, match=rf"^{path}:1: .*'status'"):
        load_records([run])


def test_find_runs_latest_first(tmp_path: Path) -> None:
    old = write_run(tmp_path, "b-old", [record()])
    new = write_run(tmp_path, "a-new", [record()])
    (tmp_path / "runs" / "not-a-run").mkdir()
    os.utime(old / "records.jsonl", (1_000, 1_000))
    os.utime(new / "records.jsonl", (2_000, 2_000))
    assert find_runs(tmp_path) == [new, old]
    assert latest_run(tmp_path) == new
    with pytest.raises(FileNotFoundError, match="no run directories"):
        latest_run(tmp_path / "empty")


def test_records_frame_flattens(tmp_path: Path) -> None:
    frame = records_frame([record(transfer=0.25), record(status="error", error="boom",
                                                         transfer=None, attack="b")])
    row = frame.iloc[0]
    assert row["transfer"] == 0.25 and row["transfer_low"] == pytest.approx(0.15)
    assert row["budget_queries"] == 100 and math.isnan(row["budget_usd"])
    assert row["tokens"] == 1200
    assert row["scenario_hash"] == "f" * 64 and row["git_sha"] == "0123456789abcdef"
    assert math.isnan(frame.iloc[1]["transfer"])


def test_seed_means_bootstraps_items_over_seeds() -> None:
    rng = np.random.default_rng(0)
    cells = []
    for seed in range(3):
        teacher = (rng.random(60) < 0.9).astype(float)
        base = (rng.random(60) < 0.2).astype(float)
        student = np.where(rng.random(60) < 0.4, teacher, base)
        point = (student.mean() - base.mean()) / (teacher.mean() - base.mean())
        cells.append(record(seed=seed, transfer=point, items=ItemScores(
            teacher=list(teacher), base=list(base), student=list(student),
            fidelity=[1.0] * 60)))
    cells.append(record(seed=9, status="skipped", error="no budget", transfer=None))
    curves = seed_means(records_frame(cells), n_boot=200)
    assert len(curves) == 1
    row = curves.iloc[0]
    assert row["n_seeds"] == 3
    assert row["transfer"] == pytest.approx(np.mean([c.transfer.value for c in cells[:3]
                                                     if c.transfer]))
    assert row["transfer_low"] < row["transfer"] < row["transfer_high"]
    assert row["x_queries"] == 100


def test_seed_means_carry_the_defenders_numbers() -> None:
    flag = Interval(value=0.2, low=0.1, high=0.3)
    records = [record(seed=0, flagged_at=40, transfer_at_flag=flag, watermark_z=5.0,
                      watermark_control_z=0.5, utility=0.9),
               record(seed=1, flagged_at=None, watermark_z=3.0, watermark_control_z=-0.5,
                      utility=0.8)]
    row = seed_means(records_frame(records), n_boot=50).iloc[0]
    assert row["flagged_at"] == 40 and row["flagged_frac"] == 0.5  # over flagged seeds
    assert (row["transfer_at_flag"], row["transfer_at_flag_low"],
            row["transfer_at_flag_high"]) == (0.2, 0.1, 0.3)
    assert (row["watermark_z"], row["watermark_control_z"]) == (4.0, 0.0)
    assert row["utility"] == pytest.approx(0.85)
    plain = seed_means(records_frame([record()]), n_boot=50)
    assert "watermark_z" not in plain or plain["watermark_z"].isna().all()
