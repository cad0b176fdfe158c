"""The detection table's calibration and simulated-time columns: means over seeds, counted
by hand; the time to 50% transfer as an upper bound, "not reached", or a dash."""

from __future__ import annotations

from pathlib import Path

from extractbench.logs.records import CellRecord
from extractbench.report.analysis import analyze
from extractbench.report.detection_table import DEFINITIONS, detection_table
from extractbench.report.document import Est, Table
from extractbench.report.frames import records_frame
from extractbench.report.leaderboard import write_leaderboard
from extractbench.testing.records import cell_record

CURVE = [{"queries": 500, "sim_s": 3600.0, "transfer": 0.3},
         {"queries": 1000, "sim_s": 9000.0, "transfer": 0.6}]


def calibration(tpr_1: float, tpr_5: float, auc_tested: float,
                queries_5: int | None) -> dict[str, dict[str, float | int | None]]:
    # "weak" never wins: its tested AUC is lower in every cell
    return {"prada": {"threshold_1": 3.0, "tpr_1": tpr_1, "fpr_1": 0.0, "threshold_5": 2.0,
                      "tpr_5": tpr_5, "fpr_5": 0.05, "auc": 0.99, "auc_tested": auc_tested,
                      "benign_tested": 8, "queries_5": queries_5},
            "weak": {"threshold_1": 9.0, "tpr_1": 1.0, "fpr_1": 0.5, "threshold_5": 8.0,
                     "tpr_5": 1.0, "fpr_5": 0.5, "auc": 0.5, "auc_tested": 0.5,
                     "benign_tested": 8, "queries_5": 1}}


def detector_cells() -> list[CellRecord]:
    """Two seeds of a calibrated detector: TPR 0 and 0.5 at 1% FPR, 0.5 and 1 at 5%; the
    second seed's key never crossed, was never flagged, and its curve never reached 0.5."""
    out = []
    for seed, (t1, t5, auc, q5, flag, half) in enumerate((
            (0.0, 0.5, 0.7, 240, 1800.0, 7200.0), (0.5, 1.0, 0.9, None, None, None))):
        out.append(cell_record(
            "det", "a", 1000, 0.6, seed=seed, defenses=["detector"], sim_s=9000.0,
            calibration=calibration(t1, t5, auc, q5), flagged_at=None if flag is None else 240,
            flag_sim_s=flag, prefix_curve=CURVE, half_sim_s=half,
            half_queries=None if half is None else 1000))
    return out


def open_cells(curve: list[dict[str, float]], half: float | None) -> list[CellRecord]:
    return [cell_record("open", "a", 1000, 0.8, seed=seed, sim_s=7000.0, prefix_curve=curve,
                        half_sim_s=half, half_queries=None if half is None else 500)
            for seed in (0, 1)]


def table_of(records: list[CellRecord]) -> Table:
    table = detection_table(analyze(records_frame(records), n_boot=20).detection)
    assert table is not None
    return table


def cell(table: Table, profile: str, header: str) -> str:
    row = next(r for r in table.rows if r[0] == profile)
    value = row[list(table.headers).index(header)]
    return value.markdown() if isinstance(value, Est) else str(value)


def test_calibration_columns_are_means_over_seeds() -> None:
    table = table_of(detector_cells() + open_cells([], None))
    assert cell(table, "det", "test") == "prada"
    assert cell(table, "det", "TPR at 1% FPR") == "25.0% (FPR 0.0%)"
    assert cell(table, "det", "TPR at 5% FPR") == "75.0% (FPR 5.0%)"
    assert cell(table, "det", "AUC tested") == "0.80"
    assert cell(table, "det", "queries to 5% threshold") == "240 (in 1 of 2 seeds)"
    assert cell(table, "det", "sim time to flag") == "30 min (in 1 of 2 seeds)"
    assert cell(table, "det", "sim time to 50%") == (
        "≤ 2.0 h (≤ 1,000 queries; not reached in 1 of 2 seeds)")
    assert cell(table, "det", "transfer at flag") == "–"  # kept: transfer-before-detection
    # the undefended profile: no calibration, never flagged, its time to 50% not measured
    assert [cell(table, "open", h) for h in ("TPR at 5% FPR", "sim time to flag",
                                             "sim time to 50%")] == ["–", "never", "–"]
    assert set(table.headers) - {"profile", "attack"} <= set(DEFINITIONS)
    assert set(table.definitions) == set(table.headers) - {"profile", "attack"}


def test_time_to_half_is_an_upper_bound_or_not_reached() -> None:
    reached = table_of(detector_cells() + open_cells(CURVE, 5400.0))
    assert cell(reached, "open", "sim time to 50%") == "≤ 90 min (≤ 500 queries)"
    never = table_of(detector_cells() + open_cells(CURVE, None))
    assert cell(never, "open", "sim time to 50%") == "not reached"


def test_calibration_alone_makes_the_table() -> None:
    quiet = [r.model_copy(update={"flagged_at": None, "flag_sim_s": None})
             for r in detector_cells()]
    table = table_of(quiet)
    assert cell(table, "det", "flagged") == "0/2 seeds"
    assert cell(table, "det", "sim time to flag") == "never"
    assert cell(table, "det", "TPR at 5% FPR") == "75.0% (FPR 5.0%)"


def test_no_calibration_no_calibration_columns() -> None:
    flagged = [cell_record("det", "a", 1000, 0.6, defenses=["detector"], flagged_at=50)]
    table = table_of(flagged)
    assert "TPR at 5% FPR" not in table.headers and "sim time to 50%" not in table.headers
    assert cell(table, "det", "flagged at") == "50"


def test_the_report_shows_the_columns_and_the_calibration_plot(tmp_path: Path) -> None:
    paths = write_leaderboard(detector_cells() + open_cells(CURVE, 5400.0), tmp_path,
                              n_boot=20)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| TPR at 1% FPR | TPR at 5% FPR | AUC tested | queries to 5% threshold | " \
        "sim time to flag | sim time to 50% |" in md
    assert "| ≤ 90 min (≤ 500 queries) |" in md
    assert "- **AUC tested**: ROC AUC" in md
    assert "*Detector calibration: for each defended profile" in md
    html = (tmp_path / "leaderboard.html").read_text()
    assert '<th title="share of attacker keys above the test' in html
    assert {p.name for p in paths} >= {"detection_calibration.png",
                                       "detection_calibration.svg"}
