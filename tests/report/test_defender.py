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


def cohort_cell(profile: str, transfer: float, heavy_harmed: int) -> CellRecord:
    heavy_utility = 1.0 - 0.25 * heavy_harmed
    figures = {
        "light": {"keys": 48, "queries": 144, "answered": 144, "flagged_keys": 0,
                  "harmed_keys": 0, "received_score": 1.0, "utility": 1.0},
        "heavy": {"keys": 2, "queries": 400, "answered": 300, "flagged_keys": heavy_harmed,
                  "harmed_keys": heavy_harmed, "received_score": heavy_utility,
                  "utility": heavy_utility},
    }
    defenses = [] if profile == "open" else [f"{profile}-defense"]
    return cell_record(profile, "a", 1000, transfer, defenses=defenses, utility=1.0, fpr=0.0,
                       benign_keys=50, benign_flagged_keys=heavy_harmed,
                       benign_harmed_keys=heavy_harmed, harmed_rate=heavy_harmed / 50,
                       benign_cohorts=figures)  # type: ignore[arg-type]


def test_every_cohort_is_gated_on_its_own(tmp_path: Path) -> None:
    # blocker blocks both heavy users: 2 of 50 keys (4%) pooled passes the 5% gate, but the
    # heavy cohort lost 100% of its keys and half its utility. polite harms nobody.
    records = [cohort_cell("blocker", 0.1, 2), cohort_cell("polite", 0.5, 0)]
    analysis = analyze(records_frame(records), n_boot=50)
    rows = {s.keys[c.PROFILE]: s for s in analysis.board.summaries}
    blocker = rows["blocker"]
    assert blocker.harmed is not None and blocker.harmed.value == pytest.approx(2 / 50)
    heavy = next(k for k in blocker.cohorts if k.name == "heavy")
    assert (heavy.utility, heavy.harmed.value, heavy.harmed.benign_keys) == (0.5, 1.0, 2)
    assert not blocker.ranked
    assert blocker.unranked_reason == ("cohort heavy: utility 0.50 < 0.90; cohort heavy: "
                                       "harmed 100.0% of 2 keys > 5%")
    assert rows["polite"].ranked and rows["polite"].rank == 1
    write_leaderboard(records, tmp_path, n_boot=50, plots=False, html=False)
    md = (tmp_path / "leaderboard.md").read_text()
    # the Wilson 95% interval of 2 harmed of 2 keys is [34%, 100%] (worked by hand)
    assert "| cohorts |" in md and "heavy 0.50, harmed 100% [34%, 100%] of 2; light 1.00, " \
        "harmed 0% [0%, " in md


def test_a_cohort_utility_has_an_interval_over_the_cells() -> None:
    from extractbench.report.defender import cohorts

    # two cells of one profile: heavy users kept 0.5 in one and 1.0 in the other (harmed 2
    # and 0 keys); the mean is 0.75 and a bootstrap over two cells can only give [0.5, 1.0]
    records = [cohort_cell("blocker", 0.1, 2), cohort_cell("blocker", 0.1, 0)]
    heavy = next(k for k in cohorts(records_frame(records)) if k.name == "heavy")
    assert heavy.utility == pytest.approx(0.75)
    assert (heavy.utility_low, heavy.utility_high) == (0.5, 1.0)
    assert heavy.text() == "heavy 0.75 [0.50, 1.00], harmed 50% [15%, 85%] of 4"
    one = next(k for k in cohorts(records_frame(records[:1])) if k.name == "heavy")
    assert one.text().startswith("heavy 0.50, harmed")  # one cell: no interval
