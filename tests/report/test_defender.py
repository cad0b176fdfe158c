"""The harmed-key gate (issue 14): a profile whose defenses act on more than MAX_HARMED of
the benign keys is not ranked, whatever its resistance; the rate is pooled over the
profile's cells with a Wilson interval. Expected values are counted by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractbench.logs.records import CellRecord
from extractbench.report import columns as c
from extractbench.report.analysis import analyze
from extractbench.report.board import MAX_HARMED
from extractbench.report.frames import records_frame
from extractbench.report.leaderboard import write_leaderboard
from extractbench.stats import wilson_interval
from extractbench.testing.records import cell_record


def cell(profile: str, transfer: float, harmed: int | None, seed: int = 0) -> CellRecord:
    fields: dict[str, object] = dict(utility=1.0, fpr=0.0, benign_keys=20,
                                     benign_flagged_keys=0)
    if harmed is not None:
        fields.update(benign_harmed_keys=harmed, harmed_rate=harmed / 20)
    defenses = [] if profile == "open" else [f"{profile}-defense"]
    return cell_record(profile, "a", 1000, transfer, seed=seed, defenses=defenses,
                       **fields)  # type: ignore[arg-type]


def test_a_defense_that_harms_too_many_benign_keys_is_not_ranked(tmp_path: Path) -> None:
    # quota resists best (leaks 0.1) by refusing 3 of 20 benign keys in each of two seeds;
    # careful leaks 0.4 and touched 1 of 40 keys; open touched none
    records = [cell("open", 0.9, 0, s) for s in (0, 1)]
    records += [cell("quota", 0.1, 3, s) for s in (0, 1)]
    records += [cell("careful", 0.4, h, s) for s, h in ((0, 1), (1, 0))]
    analysis = analyze(records_frame(records), n_boot=50)
    rows = {s.keys[c.PROFILE]: s for s in analysis.board.summaries}
    assert 6 / 40 > MAX_HARMED >= 1 / 40
    quota = rows["quota"]
    assert quota.harmed is not None
    assert (quota.harmed.value, quota.harmed.benign_keys) == (pytest.approx(6 / 40), 40)
    interval = wilson_interval(6, 40)
    assert (quota.harmed.low, quota.harmed.high) == (pytest.approx(interval.low),
                                                     pytest.approx(interval.high))
    assert not quota.ranked and quota.unranked_reason == (
        "harmed 15.0% of 40 benign keys > 5%")
    assert [(s.keys[c.PROFILE], s.rank_label) for s in analysis.board.summaries
            if s.ranked] == [("careful", "1"), ("open", "2")]
    write_leaderboard(records, tmp_path, n_boot=50, plots=False, html=False)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| harmed |" in md and "harmed 15.0% of 40 benign keys > 5%" in md


def test_records_that_do_not_count_harms_are_not_gated_by_them() -> None:
    analysis = analyze(records_frame([cell("open", 0.9, None), cell("quota", 0.1, None)]),
                       n_boot=50)
    assert all(s.harmed is None and s.ranked for s in analysis.board.summaries)
    assert c.HARMED_RATE not in analysis.table
