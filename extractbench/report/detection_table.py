"""The report's "Detection and attribution" table: the analysis'
:class:`~extractbench.report.rows.DetectionRow` s as a
:class:`~extractbench.report.document.Table`, with the definition of every column.

The calibration columns appear when some row carries calibration, the simulated-time columns
when some row ran on a simulated clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from extractbench.report import columns as c
from extractbench.report.calibration import Calibrated, SimTimes
from extractbench.report.document import Est, Table, TableCell, est, num, pct, sim_time
from extractbench.report.rows import DetectionRow

__all__ = ["DEFINITIONS", "detection_table"]

DEFINITIONS = {
    "budget": "the profile's largest budget against this attack; every figure is the plain "
              "mean over its cells (seeds)",
    "transfer": "mean transfer of those cells: (student − base) / (teacher − base)",
    "flagged": "cells in which the defense flagged an attacker key",
    "flagged at": "attacker query index of the first flag, mean over the flagged cells",
    "transfer at flag": "transfer-before-detection: a student trained only on what was "
                        "harvested before the first flag",
    "watermark z": "watermark test statistic on the student's outputs",
    "control z": "the same statistic for a clean control student: only the difference is "
                 "evidence",
    "test": "the detector test whose calibration is shown: in each cell, the one with the "
            "highest tested AUC (which looks at the attacker, so it favours the detector)",
    "TPR at 1% FPR": "share of attacker keys above the test's threshold calibrated to 1% FPR "
                     "on benign streams other than the cell's; in parentheses the FPR that "
                     "threshold gave on the cell's own benign keys",
    "TPR at 5% FPR": "the same at the threshold calibrated to 5% FPR",
    "AUC tested": "ROC AUC of the test's statistic, attacker keys against the cell's benign "
                  "keys the test computed a statistic for (light users below its minimum "
                  "queries left out: they would be easy negatives); 0.5 is chance",
    "queries to 5% threshold": "queries-to-detection: attacker queries until its first key "
                               "crossed the 5% threshold, mean over the cells in which one "
                               "did; `never` when none did",
    "sim time to flag": "simulated time from the campaign's start to the first flag of an "
                        "attacker key, mean over the flagged cells; `never` when none was "
                        "flagged",
    "sim time to 50%": "simulated time until the attacker's harvest trained a student to "
                       "50% transfer: `≤` since it is the time of the first harvest prefix "
                       "measured at or above 50%, an upper bound; `not reached` when no "
                       "prefix did; – when not measured",
}
"""The one-line meaning of each column header (an HTML tooltip and the Markdown legend)."""


def _some(cells: int, of: int) -> str:
    """``in 1 of 2 seeds`` when only some cells did it."""
    return "" if cells >= of else f"in {cells} of {of} seeds"


def _tpr(tpr: float, fpr: float) -> Est:
    return Est(pct(tpr), note="" if math.isnan(fpr) else f"FPR {pct(fpr)}")


def _calibration_cells(cal: Calibrated | None) -> list[TableCell]:
    if cal is None:
        return ["–"] * 5
    queries: TableCell = "never" if cal.crossed == 0 else Est(
        num(cal.queries_5, 0), note=_some(cal.crossed, cal.cells))
    return [", ".join(cal.tests), _tpr(cal.tpr_1, cal.fpr_1), _tpr(cal.tpr_5, cal.fpr_5),
            num(cal.auc_tested), queries]


def _time_cells(times: SimTimes | None) -> list[TableCell]:
    if times is None:
        return ["–", "–"]
    flag: TableCell = "never" if times.flagged == 0 else Est(
        sim_time(times.flag_sim_s), note=_some(times.flagged, times.cells))
    half: TableCell = "–"
    if times.measured and times.reached == 0:
        half = "not reached"
    elif times.measured:
        notes = [] if math.isnan(times.half_queries) else [
            f"≤ {num(times.half_queries, 0)} queries"]
        if times.reached < times.measured:
            notes.append(f"not reached in {times.measured - times.reached} of "
                         f"{times.measured} seeds")
        half = Est(f"≤ {sim_time(times.half_sim_s)}", note="; ".join(notes))
    return [flag, half]


def detection_table(rows: Sequence[DetectionRow]) -> Table | None:
    """Per (profile, attack) at that profile's largest budget: flags, transfer at the flag,
    watermark, and when measured the detector's calibration and the simulated times to the
    flag and to 50% transfer; ``None`` without rows."""
    if not rows:
        return None
    calibration = any(r.calibration is not None for r in rows)
    times = any(r.times is not None for r in rows)
    headers = [c.PROFILE, c.ATTACK, "budget", c.TRANSFER, "flagged", "flagged at",
               "transfer at flag"]
    if calibration:
        headers += ["test", "TPR at 1% FPR", "TPR at 5% FPR", "AUC tested",
                    "queries to 5% threshold"]
    if times:
        headers += ["sim time to flag", "sim time to 50%"]
    headers += ["watermark z", "control z"]
    cells: list[list[TableCell]] = []
    for r in rows:
        at_flag = r.transfer_at_flag
        taf = Est("–") if at_flag is None else est(
            {"v": at_flag.value, "v_low": at_flag.low, "v_high": at_flag.high}, "v")
        row: list[TableCell] = [
            r.profile, r.attack, ", ".join(r.budgets), Est(num(r.transfer)),
            f"{r.flagged}/{r.cells} seeds", num(r.flagged_at, 0) if r.flagged else "never", taf]
        row += _calibration_cells(r.calibration) if calibration else []
        row += _time_cells(r.times) if times else []
        row += [num(r.watermark_z), num(r.watermark_control_z)]
        cells.append(row)
    definitions = {h: DEFINITIONS[h] for h in headers if h in DEFINITIONS}
    return Table(headers, cells, definitions, legend=True)
