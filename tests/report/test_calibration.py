"""The detector columns of the cells frame: one test's calibration per cell (the highest
tested AUC), the prefix curve's length and the hydra sweep; and their means over seeds."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from extractbench.report import columns as c
from extractbench.report.calibration import best_test, calibrated, sim_times
from extractbench.report.frames import records_frame
from extractbench.testing.records import cell_record


def figures(auc_tested: float | None, auc: float = 0.9, tpr_5: float = 1.0,
            queries_5: int | None = 200) -> dict[str, float | int | None]:
    return {"threshold_1": 3.0, "tpr_1": 0.5, "fpr_1": 0.01, "threshold_5": 2.0,
            "tpr_5": tpr_5, "fpr_5": 0.04, "auc": auc, "auc_tested": auc_tested,
            "benign_tested": 6, "queries_5": queries_5}


def test_the_best_test_has_the_highest_tested_auc() -> None:
    # prada has the higher plain AUC, but features is better against the keys it tested
    assert best_test({"prada": figures(0.7, auc=0.99), "features": figures(0.8, auc=0.6)}) \
        == "features"
    assert best_test({"a": figures(None, auc=0.99), "b": figures(0.55)}) == "b"
    assert best_test({"b": figures(0.8, auc=0.9), "a": figures(0.8, auc=0.7)}) == "b"
    assert best_test({"b": figures(0.8), "a": figures(0.8)}) == "a"  # then by name
    assert best_test({}) is None


def test_the_cells_frame_carries_the_best_tests_figures() -> None:
    defended = cell_record(
        "det", "a", 1000, 0.5, defenses=["detector"], sim_s=9000.0, flag_sim_s=600.0,
        flagged_at=40,
        calibration={"prada": figures(0.7, tpr_5=0.25, queries_5=None),
                     "features": figures(0.9, auc=0.8, tpr_5=0.75)},
        prefix_curve=[{"queries": 100, "sim_s": 900.0, "transfer": 0.2},
                      {"queries": 1000, "sim_s": 9000.0, "transfer": 0.6}],
        half_sim_s=9000.0, half_queries=1000,
        hydra={"attacker_keys": 4, "attacker_flagged": 3, "benign_keys": 10,
               "benign_flagged": 1, "clusters": 2, "mixed_clusters": 0, "sweeps": 5})
    frame = records_frame([defended, cell_record("open", "a", 1000, 0.7)])
    row, plain = frame.iloc[0], frame.iloc[1]
    assert row[c.CAL_TEST] == "features"
    assert (row[c.TPR_5], row[c.AUC_CAL], row[c.AUC_TESTED], row[c.QUERIES_5]) == (
        0.75, 0.8, 0.9, 200)
    assert (row[c.HALF_SIM_S], row[c.HALF_QUERIES], row[c.FLAG_SIM_S], row[c.SIM_S]) == (
        9000.0, 1000, 600.0, 9000.0)
    assert row[c.PREFIX_POINTS] == 2
    assert [row[c.HYDRA_PREFIX + n] for n in c.HYDRA_FIGURES] == [4, 3, 10, 1]
    assert pd.isna(plain[c.CAL_TEST]) and math.isnan(plain[c.TPR_1])
    assert plain[c.PREFIX_POINTS] == 0 and math.isnan(plain[c.HYDRA_PREFIX + "attacker_keys"])


def test_means_over_seeds_count_the_seeds_that_crossed_or_reached() -> None:
    records = [cell_record("det", "a", 1000, 0.5, seed=s, defenses=["detector"], sim_s=9000.0,
                           calibration={"prada": figures(auc, tpr_5=tpr, queries_5=q)},
                           prefix_curve=[{"queries": 1000, "sim_s": 9000.0, "transfer": 0.5}],
                           half_sim_s=half, half_queries=None if half is None else 1000,
                           flagged_at=flag, flag_sim_s=None if flag is None else 60.0 * flag)
               for s, (auc, tpr, q, half, flag) in enumerate(
                   ((0.6, 0.5, 300, 7200.0, 30), (0.8, 1.0, None, None, None)))]
    frame = records_frame(records)
    cal = calibrated(frame)
    assert cal is not None
    assert (cal.tests, cal.cells, cal.crossed) == (("prada",), 2, 1)
    assert (cal.tpr_5, cal.auc_tested, cal.queries_5) == (pytest.approx(0.75),
                                                          pytest.approx(0.7), 300)
    times = sim_times(frame)
    assert times is not None
    assert (times.cells, times.flagged, times.flag_sim_s) == (2, 1, 1800.0)
    assert (times.measured, times.reached, times.half_sim_s, times.half_queries) == (
        2, 1, 7200.0, 1000)
    wall = records_frame([cell_record("open", "a", 1000, 0.7)])
    assert calibrated(wall) is None and sim_times(wall) is None
