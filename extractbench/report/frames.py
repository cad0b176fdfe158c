"""Records into DataFrames: one flattened row per cell, and seed means per cell coordinate.

Reading the run store lives in :mod:`extractbench.logs.store`; its names are re-exported here.
Column names are those of :mod:`extractbench.report.columns`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from extractbench.logs.records import CellRecord, Interval
from extractbench.logs.store import (
    RECORDS_FILE,
    ResultsError,
    find_runs,
    latest_run,
    load_records,
)
from extractbench.report import columns as c
from extractbench.report.calibration import cell_columns
from extractbench.report.columns import CELL_KEYS, OPTIONAL_NUMBERS
from extractbench.stats import bootstrap_transfer_seeds, transfer_of

__all__ = [
    "CELL_KEYS",
    "OPTIONAL_NUMBERS",
    "RECORDS_FILE",
    "ResultsError",
    "budget_short",
    "find_runs",
    "latest_run",
    "load_records",
    "records_frame",
    "seed_means",
]

_MEANS = (c.TEACHER_SCORE, c.BASE_SCORE, c.STUDENT_SCORE, c.FIDELITY, c.QUERIES, c.TOKENS,
          c.COST_USD, c.WALL_S, c.BUDGET_QUERIES, c.BUDGET_TOKENS, c.BUDGET_USD,
          *OPTIONAL_NUMBERS)
"""The numbers :func:`seed_means` averages over seeds when the frame has them."""


def _scalar(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _flatten(record: CellRecord) -> dict[str, object]:
    data = record.model_dump(exclude={c.ITEMS, "provenance", "budget", c.DEFENSES})
    row: dict[str, object] = {}
    for name, value in data.items():
        if isinstance(value, dict) and set(Interval.model_fields) <= set(value):
            row[name] = value["value"]
            row[c.low(name)] = value["low"]
            row[c.high(name)] = value["high"]
            row[f"{name}_level"] = value["level"]
        elif name == c.TRANSFER:  # None interval: keep the columns
            row.update({c.TRANSFER: None, c.TRANSFER_LOW: None, c.TRANSFER_HIGH: None,
                        c.TRANSFER_LEVEL: None})
        else:
            row[name] = _scalar(value)
    row[c.DEFENSES] = "+".join(record.defenses)
    for kind, column in (("queries", c.BUDGET_QUERIES), ("tokens", c.BUDGET_TOKENS),
                         ("usd", c.BUDGET_USD)):
        row[column] = record.budget.get(kind, math.nan)
    row[c.TOKENS] = record.input_tokens + record.output_tokens
    row[c.BUDGET_SHORT] = budget_short(record)
    row.update(cell_columns(record))
    provenance = record.provenance.model_dump()
    row.update({name: provenance[name] for name in c.PROVENANCE_COLUMNS})
    row[c.ITEMS] = record.items
    return row


def budget_short(record: CellRecord) -> bool:
    """The campaign stopped before spending its budget (e.g. ``attack pool exhausted`` at 600
    of 1,000 queries, or every key refused): not when it stopped with ``budget exhausted``;
    otherwise, for a query budget, when fewer queries were charged than its limit, and for a
    token or dollar budget, when it stopped for any recorded reason."""
    if record.stop_reason == "budget exhausted":
        return False
    limit = record.budget.get("queries")
    if limit is not None:
        return record.queries < limit
    return bool(record.stop_reason)


def records_frame(records: Iterable[CellRecord]) -> pd.DataFrame:
    """One row per record with flattened columns.

    Interval fields become ``NAME, NAME_low, NAME_high, NAME_level``; the budget becomes
    ``budget_queries, budget_tokens, budget_usd`` (``nan`` when not limited); provenance
    gives ``scenario_name, scenario_hash, git_sha, ...``; ``tokens`` is input + output;
    ``budget_short`` says the campaign stopped before spending its budget
    (:func:`budget_short`); ``cal_test, tpr_1, tpr_5, fpr_1, fpr_5, auc_cal, auc_tested,
    benign_tested, queries_5`` are the calibration of the detector test that scores best,
    ``prefix_points`` the length of ``prefix_curve``, ``hydra_attacker_keys, ...`` the hydra
    sweep (:func:`~extractbench.report.calibration.cell_columns`); ``calibration``, ``hydra``
    and ``prefix_curve`` themselves are JSON; ``items`` holds the
    :class:`~extractbench.logs.records.ItemScores` object (or ``None``) for re-bootstrapping.
    Fields added to :class:`CellRecord` later appear as columns too.
    """
    rows = [_flatten(r) for r in records]
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=[*CELL_KEYS, c.SEED, c.STATUS, c.TRANSFER, c.ITEMS])
    return frame


def _numeric(group: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(group[column], errors="coerce").to_numpy(dtype=float)


def _seed_transfer(group: pd.DataFrame, n_boot: int, seed: int) -> Interval:
    """Seed-mean transfer of one group of ok cells.

    One seed: the record's own interval. Several seeds with item scores: a bootstrap over
    items and seeds. Several seeds without item scores: mean of values and of bounds (a
    conservative approximation that treats the seeds' errors as fully correlated).
    """
    items = list(group[c.ITEMS]) if c.ITEMS in group else []
    values = _numeric(group, c.TRANSFER)
    lows = _numeric(group, c.TRANSFER_LOW)
    highs = _numeric(group, c.TRANSFER_HIGH)
    if np.isnan(values).any():  # an ok cell without an interval: recompute from scores
        values = np.array([
            transfer_of(float(t), float(b), float(s)) if not math.isnan(v) else v
            for v, t, b, s in zip(values, group[c.TEACHER_SCORE], group[c.BASE_SCORE],
                                  group[c.STUDENT_SCORE], strict=True)
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
    transfer with CI (``transfer, transfer_low, transfer_high``), ``n_seeds``, mean scores,
    limits and spend, ``budget_short`` (the share of seeds that stopped before spending their
    budget), ``unconverged`` (the share whose student did not converge), ``defenses``, and
    ``x_queries`` / ``x_usd``: the queries / dollars actually spent (seed mean), which is
    where the budget sits on every curve."""
    columns = [*CELL_KEYS, c.N_SEEDS, c.TRANSFER, c.TRANSFER_LOW, c.TRANSFER_HIGH,
               c.X_QUERIES, c.X_USD]
    if frame.empty or c.STATUS not in frame:
        return pd.DataFrame(columns=columns)
    ok = frame[frame[c.STATUS] == c.OK]
    rows: list[dict[str, object]] = []
    for key, group in ok.groupby(CELL_KEYS, sort=False, dropna=False):
        interval = _seed_transfer(group, n_boot, seed)
        row: dict[str, object] = dict(zip(CELL_KEYS, key, strict=True))
        row.update({c.N_SEEDS: len(group), c.TRANSFER: interval.value,
                    c.TRANSFER_LOW: interval.low, c.TRANSFER_HIGH: interval.high})
        for name in _MEANS:
            if name in group:
                row[name] = _mean(group[name])
        if c.FLAGGED_AT in group:
            row[c.FLAGGED_FRAC] = float(group[c.FLAGGED_AT].notna().mean())
        if c.BUDGET_SHORT in group:
            row[c.BUDGET_SHORT] = float(group[c.BUDGET_SHORT].astype(bool).mean())
        if c.CONVERGED in group:
            said = [bool(v) for v in group[c.CONVERGED] if isinstance(v, bool | np.bool_)]
            row[c.UNCONVERGED] = (sum(not v for v in said) / len(said)) if said else math.nan
        if c.DEFENSES in group:
            row[c.DEFENSES] = str(group[c.DEFENSES].iloc[0])
        row[c.X_QUERIES] = row.get(c.QUERIES, math.nan)
        row[c.X_USD] = row.get(c.COST_USD, math.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else columns)
