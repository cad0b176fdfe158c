"""The harmed-key gate (issue 14): a profile whose defenses act on more than MAX_HARMED of
the benign keys is not ranked, whatever its resistance; the rate is pooled over the
profile's cells with a Wilson interval. Expected values are counted by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractbench.logs.records import CellRecord
from extractbench.report import columns as c
from extractbench.report.analysis import analyze
from extractbench.report.board import MAX_HARMED, MIN_BENIGN_KEYS
from extractbench.report.frames import records_frame
from extractbench.report.leaderboard import write_leaderboard
from extractbench.stats import wilson_interval
from extractbench.testing.records import cell_record


def cell(profile: str, transfer: float, harmed: int | None, seed: int = 0) -> CellRecord:
    fields: dict[str, object] = dict(utility=1.0, fpr=0.0, benign_keys=30,
                                     benign_flagged_keys=0)
    if harmed is not None:
        fields.update(benign_harmed_keys=harmed, harmed_rate=harmed / 30)
    defenses = [] if profile == "open" else [f"{profile}-defense"]
    return cell_record(profile, "a", 1000, transfer, seed=seed, defenses=defenses,
                       **fields)  # type: ignore[arg-type]


def test_a_defense_that_harms_too_many_benign_keys_is_not_ranked(tmp_path: Path) -> None:
    # quota resists best (leaks 0.1) by refusing 3 of 30 benign keys in each of two seeds;
    # careful leaks 0.4 and touched 1 of 60 keys; open touched none
    records = [cell("open", 0.9, 0, s) for s in (0, 1)]
    records += [cell("quota", 0.1, 3, s) for s in (0, 1)]
    records += [cell("careful", 0.4, h, s) for s, h in ((0, 1), (1, 0))]
    analysis = analyze(records_frame(records), n_boot=50)
    rows = {s.keys[c.PROFILE]: s for s in analysis.board.summaries}
    assert 6 / 60 > MAX_HARMED >= 1 / 60 and MIN_BENIGN_KEYS <= 60
    quota = rows["quota"]
    assert quota.harmed is not None
    assert (quota.harmed.value, quota.harmed.benign_keys) == (pytest.approx(6 / 60), 60)
    interval = wilson_interval(6, 60)
    assert (quota.harmed.low, quota.harmed.high) == (pytest.approx(interval.low),
                                                     pytest.approx(interval.high))
    assert not quota.ranked and quota.unranked_reason == (
        "harmed 10.0% of 60 benign keys > 5%")
    assert [(s.keys[c.PROFILE], s.rank_label) for s in analysis.board.summaries
            if s.ranked] == [("careful", "1"), ("open", "2")]
    write_leaderboard(records, tmp_path, n_boot=50, plots=False, html=False)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| harmed |" in md and "harmed 10.0% of 60 benign keys > 5%" in md


def test_a_profile_needs_fifty_benign_keys_to_be_ranked() -> None:
    # one seed of 30 keys harmed none, but 0 of 30 still allows a harmed share up to 11%
    # (Wilson 95%): too few keys to bound it under 5%, so the profile is not ranked
    assert wilson_interval(0, 30).high > MAX_HARMED
    analysis = analyze(records_frame([cell("open", 0.9, 0), cell("careful", 0.4, 0)]),
                       n_boot=50)
    rows = {s.keys[c.PROFILE]: s for s in analysis.board.summaries}
    assert not rows["careful"].ranked
    assert rows["careful"].unranked_reason == "30 benign keys < 50"


def test_records_that_do_not_count_harms_are_not_gated_by_them() -> None:
    analysis = analyze(records_frame([cell("open", 0.9, None), cell("quota", 0.1, None)]),
                       n_boot=50)
    assert all(s.harmed is None and s.ranked for s in analysis.board.summaries)
    assert c.HARMED_RATE not in analysis.table


def cohort_cell(profile: str, transfer: float, heavy_harmed: int, heavy_keys: int = 50,
                users: list[float] | None = None) -> CellRecord:
    """400 light keys none harmed; ``heavy_keys`` heavy ones, ``heavy_harmed`` of them
    harmed, which lose half their utility each (``users``: the heavy users' own utilities)."""
    heavy_utility = 1.0 - 0.5 * heavy_harmed / heavy_keys
    figures = {
        "light": {"keys": 400, "queries": 1200, "answered": 1200, "flagged_keys": 0,
                  "harmed_keys": 0, "received_score": 1.0, "utility": 1.0},
        "heavy": {"keys": heavy_keys, "queries": 400 * heavy_keys, "answered": 300,
                  "flagged_keys": heavy_harmed, "harmed_keys": heavy_harmed,
                  "received_score": heavy_utility, "utility": heavy_utility,
                  "user_utility": users},
    }
    defenses = [] if profile == "open" else [f"{profile}-defense"]
    n = 400 + heavy_keys
    return cell_record(profile, "a", 1000, transfer, defenses=defenses, utility=1.0, fpr=0.0,
                       benign_keys=n, benign_flagged_keys=heavy_harmed,
                       benign_harmed_keys=heavy_harmed, harmed_rate=heavy_harmed / n,
                       benign_cohorts=figures)  # type: ignore[arg-type]


def test_every_cohort_is_gated_on_its_own(tmp_path: Path) -> None:
    # blocker blocks 20 of the 50 heavy users: 20 of 450 keys (4.4%) pooled passes the 5%
    # gate, but the heavy cohort lost 40% of its keys and a fifth of its utility. polite
    # harms nobody.
    records = [cohort_cell("blocker", 0.1, 20), cohort_cell("polite", 0.5, 0)]
    analysis = analyze(records_frame(records), n_boot=50)
    rows = {s.keys[c.PROFILE]: s for s in analysis.board.summaries}
    blocker = rows["blocker"]
    assert blocker.harmed is not None and blocker.harmed.value == pytest.approx(20 / 450)
    heavy = next(k for k in blocker.cohorts if k.name == "heavy")
    assert (heavy.utility, heavy.harmed.value, heavy.harmed.benign_keys) == (0.8, 0.4, 50)
    assert not blocker.ranked
    assert blocker.unranked_reason == ("cohort heavy: utility 0.80 < 0.90; cohort heavy: "
                                       "harmed 40.0% of 50 keys > 5%")
    assert rows["polite"].ranked and rows["polite"].rank == 1
    write_leaderboard(records, tmp_path, n_boot=50, plots=False, html=False)
    md = (tmp_path / "leaderboard.md").read_text()
    w = wilson_interval(20, 50)
    assert "| cohorts |" in md and (f"heavy 0.80, harmed 40% [{w.low:.0%}, {w.high:.0%}] of "
                                    "50; light 1.00, harmed 0% [0%, ") in md


def test_a_cohort_of_too_few_keys_keeps_its_profile_off_the_ranks() -> None:
    # polite harmed none of its 2 heavy users: 0 of 2 bounds nothing
    analysis = analyze(records_frame([cohort_cell("polite", 0.5, 0, heavy_keys=2)]),
                       n_boot=50)
    (polite,) = analysis.board.summaries
    assert not polite.ranked and polite.unranked_reason == "cohort heavy: 2 keys < 50"


def test_a_cohort_utility_has_an_interval_over_the_cells() -> None:
    from extractbench.report.defender import cohorts

    # records without per-user figures: two cells of one profile, heavy users kept 0.5 in
    # one and 1.0 in the other; the mean is 0.75 and a bootstrap over two cells can only give
    # [0.5, 1.0]; 50 of 100 heavy keys harmed is 50% [40%, 60%] (Wilson, worked by hand)
    records = [cohort_cell("blocker", 0.1, 50), cohort_cell("blocker", 0.1, 0)]
    heavy = next(k for k in cohorts(records_frame(records)) if k.name == "heavy")
    assert heavy.utility == pytest.approx(0.75) and heavy.over == "cells"
    assert (heavy.utility_low, heavy.utility_high) == (0.5, 1.0)
    assert heavy.text() == "heavy 0.75 [0.50, 1.00] over cells, harmed 50% [40%, 60%] of 100"
    one = next(k for k in cohorts(records_frame(records[:1])) if k.name == "heavy")
    assert one.text().startswith("heavy 0.50, harmed")  # one cell: no interval


def test_a_cohort_utility_is_over_its_users_when_the_records_keep_them() -> None:
    from extractbench.report.defender import cohorts

    # cell 1: three heavy users got everything, one got nothing (cohort 0.75); cell 2: two
    # users got everything (1.0). Over users the mean is 5/6 (over cells it would be 0.875),
    # and resampling six users of whom one scored 0 gives an interval around it within [0, 1]
    records = [cohort_cell("p", 0.1, 1, heavy_keys=4, users=[1.0, 1.0, 1.0, 0.0]),
               cohort_cell("p", 0.1, 0, heavy_keys=2, users=[1.0, 1.0])]
    heavy = next(k for k in cohorts(records_frame(records)) if k.name == "heavy")
    assert heavy.over == "users" and heavy.utility == pytest.approx(5 / 6)
    assert 0.0 <= heavy.utility_low < 5 / 6 <= heavy.utility_high == 1.0
    assert " over cells" not in heavy.text()
    # one record without them: the cells again
    records.append(cohort_cell("p", 0.1, 0, heavy_keys=2))
    mixed = next(k for k in cohorts(records_frame(records)) if k.name == "heavy")
    assert mixed.over == "cells" and mixed.utility == pytest.approx((0.875 + 1 + 1) / 3)
