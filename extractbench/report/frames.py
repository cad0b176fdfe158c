"""Read the results store: run directories of ``records.jsonl`` into records and frames.

A run directory ``results/runs/<run-id>/`` holds ``records.jsonl``, one
:class:`~extractbench.logs.records.CellRecord` JSON per line, append-only. A cell re-run appends a
new line; the last line for a ``cell_id`` wins. A crash mid-write can leave the last line
truncated: it is skipped with a warning on stderr. Any other bad line is an error naming
``FILE:LINE``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from extractbench.logs.records import CellRecord, Interval
from extractbench.stats import bootstrap_transfer_seeds, transfer_of

__all__ = [
    "RECORDS_FILE",
    "ResultsError",
    "find_runs",
    "latest_run",
    "load_records",
    "records_frame",
    "seed_means",
]

RECORDS_FILE = "records.jsonl"

CELL_KEYS = ["profile", "task", "attack", "student", "budget_label"]
"""A cell's coordinates except the seed: what :func:`seed_means` groups by."""

# Optional per-cell numbers that may appear on records (DESIGN.md "Metrics"); averaged over
# seeds by seed_means when the frame has them (``flagged_at``: over the seeds that were flagged).
OPTIONAL_NUMBERS = (
    "utility", "defended_score", "fpr", "tpr", "flagged_at",
    "transfer_at_flag", "transfer_at_flag_low", "transfer_at_flag_high",
    "watermark_z", "watermark_control_z",
)

_PROVENANCE_COLUMNS = (
    "scenario_name", "scenario_path", "scenario_hash", "git_sha", "git_dirty",
    "extractbench_version", "python", "platform",
)


class ResultsError(ValueError):
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


def _scalar(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _flatten(record: CellRecord) -> dict[str, object]:
    data = record.model_dump(exclude={"items", "provenance", "budget", "defenses"})
    row: dict[str, object] = {}
    for name, value in data.items():
        if isinstance(value, dict) and set(Interval.model_fields) <= set(value):
            row[name] = value["value"]
            row[f"{name}_low"] = value["low"]
            row[f"{name}_high"] = value["high"]
            row[f"{name}_level"] = value["level"]
        elif name == "transfer":  # None interval: keep the columns
            row.update(transfer=None, transfer_low=None, transfer_high=None, transfer_level=None)
        else:
            row[name] = _scalar(value)
    row["defenses"] = "+".join(record.defenses)
    for kind in ("queries", "tokens", "usd"):
        row[f"budget_{kind}"] = record.budget.get(kind, math.nan)
    row["tokens"] = record.input_tokens + record.output_tokens
    provenance = record.provenance.model_dump()
    row.update({name: provenance[name] for name in _PROVENANCE_COLUMNS})
    row["items"] = record.items
    return row


def records_frame(records: Iterable[CellRecord]) -> pd.DataFrame:
    """One row per record with flattened columns.

    Interval fields become ``NAME, NAME_low, NAME_high, NAME_level``; the budget becomes
    ``budget_queries, budget_tokens, budget_usd`` (``nan`` when not limited); provenance
    gives ``scenario_name, scenario_hash, git_sha, ...``; ``tokens`` is input + output;
    ``items`` holds the :class:`~extractbench.logs.records.ItemScores` object (or ``None``) for
    re-bootstrapping. Fields added to :class:`CellRecord` later appear as columns too.
    """
    rows = [_flatten(r) for r in records]
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=[*CELL_KEYS, "seed", "status", "transfer", "items"])
    return frame


def _seed_transfer(group: pd.DataFrame, n_boot: int, seed: int) -> Interval:
    """Seed-mean transfer of one group of ok cells.

    One seed: the record's own interval. Several seeds with item scores: a bootstrap over
    items and seeds. Several seeds without item scores: mean of values and of bounds (a
    conservative approximation that treats the seeds' errors as fully correlated).
    """
    items = list(group["items"]) if "items" in group else []
    values = pd.to_numeric(group["transfer"], errors="coerce").to_numpy(dtype=float)
    lows = pd.to_numeric(group["transfer_low"], errors="coerce").to_numpy(dtype=float)
    highs = pd.to_numeric(group["transfer_high"], errors="coerce").to_numpy(dtype=float)
    if np.isnan(values).any():  # an ok cell without an interval: recompute from scores
        values = np.array([
            transfer_of(float(t), float(b), float(s)) if not math.isnan(v) else v
            for v, t, b, s in zip(values, group["teacher_score"], group["base_score"],
                                  group["student_score"], strict=True)
        ])
    if len(group) == 1:
        return Interval(value=float(values[0]), low=float(lows[0]), high=float(highs[0]))
    if items and all(i is not None for i in items):
        boot = bootstrap_transfer_seeds(
            [(i.teacher, i.base, i.student) for i in items], n_boot=n_boot, seed=seed
        )
        defined = values[~np.isnan(values)]
        value = float(defined.mean()) if defined.size else math.nan
        return Interval(value=value, low=boot.low, high=boot.high)
    if np.isnan(values).all():
        return Interval(value=math.nan, low=math.nan, high=math.nan)
    return Interval(value=float(np.nanmean(values)), low=float(np.nanmean(lows))
                    if not np.isnan(lows).all() else math.nan,
                    high=float(np.nanmean(highs)) if not np.isnan(highs).all() else math.nan)


def _mean(column: pd.Series) -> float:
    numbers = pd.to_numeric(column, errors="coerce").dropna()
    return float(numbers.mean()) if len(numbers) else math.nan


def seed_means(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (profile, task, attack, student, budget) over the ok cells: seed-mean
    transfer with CI (``transfer, transfer_low, transfer_high``), ``n_seeds``, mean scores and
    spend, and ``x_queries`` / ``x_usd``: the budget's query / dollar limit when it has one,
    otherwise the queries / dollars actually spent (seed mean)."""
    columns = [*CELL_KEYS, "n_seeds", "transfer", "transfer_low", "transfer_high",
               "x_queries", "x_usd"]
    if frame.empty or "status" not in frame:
        return pd.DataFrame(columns=columns)
    ok = frame[frame["status"] == "ok"]
    rows: list[dict[str, object]] = []
    for key, group in ok.groupby(CELL_KEYS, sort=False, dropna=False):
        interval = _seed_transfer(group, n_boot, seed)
        row: dict[str, object] = dict(zip(CELL_KEYS, key, strict=True))
        row.update(
            n_seeds=len(group), transfer=interval.value, transfer_low=interval.low,
            transfer_high=interval.high,
        )
        for name in ("teacher_score", "base_score", "student_score", "fidelity", "queries",
                     "tokens", "cost_usd", "wall_s", "budget_queries", "budget_tokens",
                     "budget_usd", *OPTIONAL_NUMBERS):
            if name in group:
                row[name] = _mean(group[name])
        if "flagged_at" in group:
            row["flagged_frac"] = float(group["flagged_at"].notna().mean())
        budget_q, budget_usd = row["budget_queries"], row["budget_usd"]
        row["x_queries"] = row["queries"] if _isnan(budget_q) else budget_q
        row["x_usd"] = row["cost_usd"] if _isnan(budget_usd) else budget_usd
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else columns)


def _isnan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)
