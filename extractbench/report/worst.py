"""The worst case over attacks: for each profile, task and budget, the (attack, student) whose
seed-mean transfer is highest, with that cell's CI.

Computed once per report by :func:`~extractbench.report.analysis.analyze` and shared by the
tables, the curve bootstrap, the detection columns and the plots' worst-case panel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from extractbench.report import columns as c

__all__ = ["budget_order", "combine_tasks", "worst_by_series", "worst_case"]

WORST_KEYS = [c.PROFILE, c.TASK, c.BUDGET_LABEL]
"""What the worst case is taken per."""

SERIES_KEYS = [c.PROFILE, c.STUDENT, c.TASK, c.BUDGET_LABEL]
"""What the plots' worst case is taken per: one line per profile and student recipe."""


def _pick(curves: pd.DataFrame, keys: Sequence[str], keep_undefined: bool) -> pd.DataFrame:
    """Per group of ``keys`` (first-appearance order), the row with the highest transfer (the
    first of equal ones). A group without any transfer gives its first row with ``nan``
    transfer and no attack when ``keep_undefined``, nothing otherwise."""
    rows: list[dict[str, object]] = []
    for _, group in curves.groupby(list(keys), sort=False):
        defined = group.dropna(subset=[c.TRANSFER])
        if len(defined):
            best = defined.iloc[int(np.argmax(defined[c.TRANSFER].to_numpy(dtype=float)))]
            rows.append({str(k): v for k, v in best.items()})
        elif keep_undefined:
            row = {str(k): v for k, v in group.iloc[0].items()}
            row.update({c.TRANSFER: math.nan, c.TRANSFER_LOW: math.nan,
                        c.TRANSFER_HIGH: math.nan, c.ATTACK: "", c.STUDENT: ""})
            rows.append(row)
    return pd.DataFrame(rows)


def combine_tasks(per_task: pd.DataFrame) -> pd.DataFrame:
    """A per-task worst case averaged over tasks per (profile, budget): the value and the CI
    bounds are the means over tasks of each task's worst case (exact for one task; for
    several the bounds are conservative), and ``attack`` lists ``task:attack`` when the
    winning attack differs between tasks."""
    combined: list[dict[str, object]] = []
    for (profile, label), group in per_task.groupby([c.PROFILE, c.BUDGET_LABEL], sort=False):
        numbers = group.select_dtypes("number").mean(numeric_only=True)
        row = {str(k): v for k, v in numbers.items()}
        attacks = group[c.ATTACK].astype(str)
        students = group[c.STUDENT].astype(str)
        row.update({
            c.PROFILE: profile, c.BUDGET_LABEL: label,
            c.TASK: ", ".join(sorted(group[c.TASK].astype(str))),
            c.ATTACK: attacks.iloc[0] if attacks.nunique() == 1 else ", ".join(
                f"{t}:{a}" for t, a in zip(group[c.TASK], attacks, strict=True)),
            c.STUDENT: students.iloc[0] if students.nunique() == 1 else ", ".join(
                sorted(set(students))),
        })
        combined.append(row)
    return pd.DataFrame(combined)


def worst_case(curves: pd.DataFrame, by_task: bool = True) -> pd.DataFrame:
    """Worst case over attacks per (profile, task, budget) of a
    :func:`~extractbench.report.frames.seed_means` frame.

    Columns: profile, task, budget_label, transfer, transfer_low, transfer_high, attack,
    student, x_queries, x_usd, and the other columns of the winning row. With
    ``by_task=False`` tasks are averaged per (profile, budget) (:func:`combine_tasks`).
    """
    if curves.empty:
        return pd.DataFrame(columns=[*WORST_KEYS, c.TRANSFER, c.TRANSFER_LOW, c.TRANSFER_HIGH,
                                     c.ATTACK, c.STUDENT, c.X_QUERIES, c.X_USD])
    per_task = _pick(curves, WORST_KEYS, keep_undefined=True)
    return per_task if by_task else combine_tasks(per_task)


def worst_by_series(curves: pd.DataFrame) -> pd.DataFrame:
    """The plots' worst case: per (profile, student, task, budget) the row of the attack with
    the highest seed-mean transfer; budgets without any transfer are left out."""
    defined = curves.dropna(subset=[c.TRANSFER])
    if defined.empty:
        return defined
    return _pick(defined, SERIES_KEYS, keep_undefined=False)


def budget_order(frame: pd.DataFrame) -> list[str]:
    """Budget labels of a cells, seed-means or worst-case frame ordered by size: by their
    limits (queries, then tokens, then dollars: median over the frame's rows, a missing limit
    counting as 0), not by what was spent; by the queries spent when the frame has no limits."""
    if frame.empty:
        return []
    limits = [name for name in (c.BUDGET_QUERIES, c.BUDGET_TOKENS, c.BUDGET_USD)
              if name in frame] or [c.X_QUERIES if c.X_QUERIES in frame else c.QUERIES]
    sizes = frame[[c.BUDGET_LABEL]].assign(**{
        name: pd.to_numeric(frame[name], errors="coerce").fillna(0.0) for name in limits})
    order = sizes.groupby(c.BUDGET_LABEL, sort=False)[limits].median()
    return [str(label) for label in order.sort_values(limits, kind="stable").index]
