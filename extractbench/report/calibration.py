"""The detector's calibration and the simulated times in the report: a cell's columns, and
their plain means over the seeds of one (profile, attack) for the detection table and plot.

A record's ``calibration`` holds figures per detector test
(:mod:`extractbench.measure.calibration`); the report shows one test per cell, the one
:func:`best_test` picks. ``flag_sim_s``, ``half_sim_s`` and ``prefix_curve`` exist on a
simulated clock only; ``hydra`` only with the cross-account detector.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from extractbench.logs.records import CellRecord
from extractbench.report import columns as c

__all__ = ["Calibrated", "SimTimes", "best_test", "calibrated", "cell_columns", "sim_times"]

Figures = Mapping[str, float | int | None]
"""One test's calibration figures (``tpr_1``, ..., ``queries_5``)."""

_RECORD_NAMES = {c.AUC_CAL: "auc"}
"""Columns named apart from their key in the record (``auc`` is the leaderboard's curve
AUC)."""


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else math.nan


def best_test(calibration: Mapping[str, Figures]) -> str | None:
    """The test that scores best: the highest ``auc_tested``; a test without one ranks after
    every test with one; ties go to the higher ``auc``, then to the first name in alphabetical
    order. ``None`` without calibration. The choice looks at the attacker's keys, so it
    favours the detector: a vendor picks a test before seeing the attack."""
    def score(name: str) -> tuple[float, float]:
        tested, auc = (_number(calibration[name].get(k)) for k in (c.AUC_TESTED, "auc"))
        return (-math.inf if math.isnan(tested) else tested,
                -math.inf if math.isnan(auc) else auc)

    names = sorted(calibration)
    return max(names, key=score) if names else None


def cell_columns(record: CellRecord) -> dict[str, object]:
    """The record's detector columns: ``cal_test`` and the figures of :func:`best_test`
    (``None`` without calibration; ``queries_5`` also when no key crossed), ``prefix_points``
    (points of its ``prefix_curve``) and ``hydra_<name>`` for each of
    :data:`~extractbench.report.columns.HYDRA_FIGURES` (``None`` without the hydra
    detector)."""
    test = best_test(record.calibration)
    figures = record.calibration[test] if test is not None else {}
    out: dict[str, object] = {c.CAL_TEST: test}
    out.update({name: figures.get(_RECORD_NAMES.get(name, name))
                for name in c.CALIBRATION_FIGURES})
    out[c.PREFIX_POINTS] = len(record.prefix_curve)
    out.update({c.HYDRA_PREFIX + name: record.hydra.get(name) for name in c.HYDRA_FIGURES})
    return out


def _mean(rows: pd.DataFrame, column: str) -> float:
    if column not in rows:
        return math.nan
    values = pd.to_numeric(rows[column], errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan


def _defined(rows: pd.DataFrame, column: str) -> pd.Series:
    if column not in rows:
        return pd.Series(False, index=rows.index)
    return pd.to_numeric(rows[column], errors="coerce").notna()


@dataclass(frozen=True)
class Calibrated:
    """The calibration figures of one (profile, attack): plain means over the cells (seeds)
    that carry calibration, each cell's best test (:func:`best_test`)."""

    tests: tuple[str, ...]
    """The tests behind the figures, distinct (several when seeds picked different ones)."""
    cells: int
    """Cells with calibration."""
    tpr_1: float
    """Mean share of attacker keys above the threshold calibrated to 1% FPR."""
    tpr_5: float
    """The same at 5% FPR."""
    fpr_1: float
    """Mean realised FPR at the 1% threshold, on the cells' own benign keys."""
    fpr_5: float
    """The same at the 5% threshold."""
    auc_tested: float
    """Mean ROC AUC against the benign keys the test computed a statistic for."""
    crossed: int
    """Cells in which an attacker key crossed the 5% threshold."""
    queries_5: float
    """Mean attacker queries until then, over those cells (``nan`` when none)."""


def calibrated(rows: pd.DataFrame) -> Calibrated | None:
    """:class:`Calibrated` of ``rows`` (cells); ``None`` when none carries calibration."""
    if c.CAL_TEST not in rows or rows[c.CAL_TEST].isna().all():
        return None
    have = rows[rows[c.CAL_TEST].notna()]
    return Calibrated(
        tuple(dict.fromkeys(str(t) for t in have[c.CAL_TEST])), len(have), _mean(have, c.TPR_1),
        _mean(have, c.TPR_5), _mean(have, c.FPR_1), _mean(have, c.FPR_5),
        _mean(have, c.AUC_TESTED), int(_defined(have, c.QUERIES_5).sum()),
        _mean(have, c.QUERIES_5))


@dataclass(frozen=True)
class SimTimes:
    """Simulated time to the first flag and to 50% transfer of one (profile, attack): plain
    means over the cells (seeds) that have them."""

    cells: int
    """Cells on a simulated clock (with a ``sim_s``)."""
    flagged: int
    """Of them, cells whose attacker was flagged."""
    flag_sim_s: float
    """Mean simulated seconds to the first flag over the flagged cells (``nan``: none, or
    not recorded)."""
    measured: int
    """Cells whose time to 50% transfer was measured (a prefix curve)."""
    reached: int
    """Of them, cells whose prefix curve reached 50% transfer."""
    half_sim_s: float
    """Mean ``half_sim_s`` over those: an upper bound (each cell's is one)."""
    half_queries: float
    """Mean ``half_queries`` over those."""


def sim_times(rows: pd.DataFrame) -> SimTimes | None:
    """:class:`SimTimes` of ``rows`` (cells); ``None`` when none ran on a simulated clock."""
    simulated = rows[_defined(rows, c.SIM_S)]
    if simulated.empty:
        return None
    flagged = simulated[_defined(simulated, c.FLAGGED_AT) | _defined(simulated, c.FLAG_SIM_S)]
    points = pd.to_numeric(simulated[c.PREFIX_POINTS], errors="coerce").fillna(0) \
        if c.PREFIX_POINTS in simulated else pd.Series(0, index=simulated.index)
    reached_mask = _defined(simulated, c.HALF_SIM_S)
    measured = simulated[(points > 0) | reached_mask]
    reached = simulated[reached_mask]
    return SimTimes(len(simulated), len(flagged), _mean(flagged, c.FLAG_SIM_S), len(measured),
                    len(reached), _mean(reached, c.HALF_SIM_S), _mean(reached, c.HALF_QUERIES))
