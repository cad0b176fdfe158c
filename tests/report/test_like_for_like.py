"""Comparisons only between like measurements (issue 13): the ranking set, common budgets,
spend as the x-axis, distinct words for a crossing that is not a number, ties.

Every expected value is worked out by hand in the test from the transfers the records are
built with (:mod:`extractbench.testing.records`: transfer ± 0.05 unless said otherwise).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from extractbench.config.scenario import Ranking, Scenario, scenario_hash
from extractbench.logs.records import CellRecord
from extractbench.report import columns as c
from extractbench.report.analysis import Analysis, analyze
from extractbench.report.curve import rank_labels
from extractbench.report.frames import budget_short, records_frame
from extractbench.report.leaderboard import write_leaderboard
from extractbench.report.rows import ProfileSummary
from extractbench.testing.records import cell_record


def cell(profile: str, attack: str, queries: int, transfer: float | None,
         **fields: object) -> CellRecord:
    """A cell of ``profile``; every profile but ``open`` has a defense stack."""
    defenses = [] if profile == "open" else [f"{profile}-defense"]
    return cell_record(profile, attack, queries, transfer, defenses=defenses,
                       **fields)  # type: ignore[arg-type]


def run(records: list[CellRecord], **kwargs: object) -> Analysis:
    return analyze(records_frame(records), n_boot=50, **kwargs)  # type: ignore[arg-type]


def rows(analysis: Analysis) -> dict[str, ProfileSummary]:
    return {s.keys[c.PROFILE]: s for s in analysis.board.summaries}


# ------------------------------------------------------------------------- the ranking set


def test_a_profile_measured_on_one_attack_is_not_ranked_above_one_measured_on_three() -> None:
    # open (undefended) and guard3 faced a, b and c; guard1 faced only a, the weakest attack.
    # By the worst case over "whatever ran", guard1 would resist 1 - 0.1 = 0.9 and rank
    # first, above guard3's 1 - max(0.2, 0.5, 0.4) = 0.5.
    records = [cell("open", a, 1000, t) for a, t in (("a", 0.3), ("b", 0.9), ("c", 0.8))]
    records += [cell("guard3", a, 1000, t) for a, t in (("a", 0.2), ("b", 0.5), ("c", 0.4))]
    records += [cell("guard1", "a", 1000, 0.1)]
    analysis = run(records)
    board = rows(analysis)
    assert [s.keys[c.PROFILE] for s in analysis.board.summaries if s.ranked] == [
        "guard3", "open"]
    guard3, guard1 = board["guard3"], board["guard1"]
    assert (guard3.rank, guard3.resistance.value) == (1, pytest.approx(0.5))
    assert guard3.worst_attack == "b"
    assert (guard1.ranked, guard1.complete, guard1.rank) == (False, False, None)
    assert guard1.missing == "not measured against b, c at q1000"
    assert guard1.unranked_reason == "incomplete: not measured against b, c at q1000"
    # the set is what the undefended profile was measured on
    required = analysis.ranking_sets["t"]
    assert required.pairs == (("a", "q1000"), ("b", "q1000"), ("c", "q1000"))
    assert required.reference == ("open",)


def test_the_report_lists_incomplete_profiles_with_what_is_missing(tmp_path: Path) -> None:
    records = [cell("open", a, q, 0.3) for a in ("a", "b") for q in (100, 1000)]
    records += [cell("guard", "a", q, 0.1) for q in (100, 1000)]
    write_leaderboard(records, tmp_path, n_boot=50, plots=False, html=False)
    md = (tmp_path / "leaderboard.md").read_text()
    ranked, incomplete = md.split("## Incomplete: not measured on the whole ranking set")
    assert "| 1 | open |" in ranked and "| guard |" not in ranked
    assert "Ranked on a, b at q100, q1000 (seed 0): what the undefended profile open" in ranked
    assert "| – | guard | incomplete: not measured against b at q100, q1000 |" in incomplete


def test_a_declared_ranking_sets_the_attacks_budgets_and_seeds() -> None:
    records = [cell("open", a, 1000, t, seed=s) for a, t in (("a", 0.4), ("b", 0.9))
               for s in (0, 1)]
    records += [cell("guard", a, 1000, t, seed=s) for a, t in (("a", 0.2), ("b", 0.6))
                for s in (0, 1)]
    records += [cell("thin", "a", 1000, 0.05, seed=0)]
    # declared: only attack a. guard's worst case is then 0.2 (b is outside the set), and
    # thin, measured on seed 0 alone, misses seed 1 (the seeds every profile has there)
    analysis = run(records, ranking=Ranking(attacks=["a"], budgets=["q1000"]))
    board = rows(analysis)
    assert board["guard"].resistance.value == pytest.approx(1 - 0.2)
    assert board["open"].resistance.value == pytest.approx(1 - 0.4)
    assert board["thin"].missing == "without seed 1 of a at q1000"
    assert analysis.outside == (("t", "open (t): b at q1000"), ("t", "guard (t): b at q1000"))
    # declared seeds: seed 0 alone, so thin is complete and ranked first: resistance
    # 0.95 [0.90, 1.00] > 0.8 [0.75, 0.85] > 0.6 [0.55, 0.65], no two CIs overlap
    only0 = run(records, ranking=Ranking(attacks=["a"], budgets=["q1000"], seeds=[0]))
    assert [(s.keys[c.PROFILE], s.rank_label) for s in only0.board.summaries] == [
        ("thin", "1"), ("guard", "2"), ("open", "3")]


def test_without_an_undefended_profile_the_set_is_what_every_profile_shares() -> None:
    records = [cell("g1", a, 100, 0.2) for a in ("a", "b")] + [cell("g2", "a", 100, 0.4)]
    analysis = run(records)
    required = analysis.ranking_sets["t"]
    assert (required.pairs, required.source) == ((("a", "q100"),), "shared")
    board = rows(analysis)
    # g1's b is outside the shared set: both are ranked on a alone
    assert board["g1"].resistance.value == pytest.approx(0.8) and board["g1"].ranked
    assert board["g2"].resistance.value == pytest.approx(0.6) and board["g2"].ranked
    # nothing shared: nothing is ranked, and the reason says so
    apart = rows(run([cell("g1", "a", 100, 0.2), cell("g2", "b", 100, 0.4)]))
    assert not any(s.ranked for s in apart.values())
    assert apart["g1"].missing.startswith("nothing to compare on")


# ---------------------------------------------------------------------------- like budgets


def test_resistance_auc_and_crossing_compare_like_budgets() -> None:
    # open (undefended) at q100, q1000; guard also at q10000, where it leaks 0.9. Read at its
    # own largest budget, guard's resistance would be 1 - 0.9 = 0.1 against open's at q1000.
    records = [cell("open", "a", 100, 0.3), cell("open", "a", 1000, 0.8),
               cell("guard", "a", 100, 0.2), cell("guard", "a", 1000, 0.6),
               cell("guard", "a", 10000, 0.9), cell("small", "a", 100, 0.05)]
    analysis = run(records)
    assert analysis.compared_budgets == ("q100", "q1000")
    board = rows(analysis)
    guard = board["guard"]
    assert (guard.budget_max, guard.resistance.value) == ("q1000", pytest.approx(1 - 0.6))
    assert [p.budget_label for p in guard.curve] == ["q100", "q1000"]
    # AUC over log10 q = 2..3: (0.2 + 0.6) / 2 over a log-range of 1
    assert guard.auc.value == pytest.approx(0.4)
    # 0.5 is 3/4 of the way from 0.2 to 0.6, so at log10 q = 2.75
    assert guard.q50_status == "interpolated"
    assert guard.q50_queries.value == pytest.approx(10 ** 2.75)
    assert (guard.rank, board["open"].rank) == (1, 2)  # 0.4 vs 0.2, CIs apart
    # small was not measured at q1000: no resistance, no AUC, no crossing, not ranked
    small = board["small"]
    assert small.budget_max == "q1000" and math.isnan(small.resistance.value)
    assert math.isnan(small.auc.value) and small.q50_status == "not_measured"
    assert small.missing == "not measured against a at q1000"


def test_the_overall_table_uses_the_budgets_of_every_compared_task() -> None:
    records = [cell("open", "a", q, 0.4, task="t1") for q in (100, 1000)]
    records += [cell("open", "a", 100, 0.6, task="t2")]
    analysis = run(records)
    assert analysis.compared_budgets == ("q100",)
    (row,) = analysis.board.summaries
    # the mean of the two tasks at the one budget both were measured at
    assert row.budget_max == "q100" and row.resistance.value == pytest.approx(1 - 0.5)
    assert analysis.task_board is not None
    assert [(s.keys[c.TASK], s.budget_max) for s in analysis.task_board.summaries] == [
        ("t1", "q1000"), ("t2", "q100")]


# --------------------------------------------------------------------- spend is the x-axis


def test_a_budget_that_could_not_be_spent_sits_at_its_spend() -> None:
    # q1000 stopped at 600 queries (attack pool exhausted)
    records = [cell("open", "a", 10, 0.0), cell("open", "a", 100, 0.2),
               cell("open", "a", 1000, 0.8, spent=600)]
    (row,) = run(records).board.summaries
    point = row.curve[-1]
    assert (point.x_queries, point.limit, point.short) == (600, 1000, 1.0)
    assert row.curve[0].short == 0.0
    # trapezoids over log10 x = 1, 2, log10(600), divided by the range spent
    top = math.log10(600)
    area = (2 - 1) * (0.0 + 0.2) / 2 + (top - 2) * (0.2 + 0.8) / 2
    assert row.auc.value == pytest.approx(area / (top - 1))
    # 0.5 is halfway from 0.2 to 0.8, so halfway in log10 from 100 to 600: sqrt(100 * 600),
    # not sqrt(100 * 1000) as at the budget's label
    assert row.q50_queries.value == pytest.approx(math.sqrt(100 * 600))


def test_which_budgets_count_as_not_spent() -> None:
    spent_all = cell("p", "a", 1000, 0.5)
    pool = cell("p", "a", 1000, 0.5, spent=600)
    refused = cell("p", "a", 1000, 0.5, spent=465, stop_reason="all keys refused")
    tokens = cell("p", "a", 100, 0.5, budget={"tokens": 5000.0}, spent=80,
                  stop_reason="budget exhausted")
    tokens_short = cell("p", "a", 100, 0.5, budget={"tokens": 5000.0}, spent=80,
                        stop_reason="attack pool exhausted")
    old = cell("p", "a", 1000, 0.5, spent=600, stop_reason="")  # a record from before
    assert [budget_short(r) for r in (spent_all, pool, refused, tokens, tokens_short, old)] == [
        False, True, True, False, True, True]


def test_tables_and_plots_mark_a_budget_that_could_not_be_spent(tmp_path: Path) -> None:
    records = [cell("open", "a", 10, 0.0), cell("open", "a", 100, 0.2),
               cell("open", "a", 1000, 0.8, spent=600)]
    paths = write_leaderboard(records, tmp_path, n_boot=50, html=False)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "0.80 [0.75, 0.85] (a; spent 600 of 1,000)" in md
    assert "| 600 of 1,000 |" in md  # the cells table
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert (board.loc[0, "wc_q1000_queries"], board.loc[0, "wc_q1000_limit"]) == (600, 1000)
    svg = (tmp_path / "transfer_vs_budget.svg").read_text()
    # the point is labelled and the axis is labelled at what was spent, not at the label
    assert "600 of 1,000" in svg and "hollow: budget not fully spent" in svg
    assert ">1k<" not in svg.replace(" ", "") and "queries spent" in svg
    assert tmp_path / "transfer_vs_budget.png" in paths


# --------------------------------------------------------- the words for "not a number"


def test_below_above_and_not_measured_are_different_words(tmp_path: Path) -> None:
    records = [cell("open", "a", q, t) for q, t in ((100, 0.6), (1000, 0.9))]  # below
    records += [cell("guard", "a", q, t) for q, t in ((100, 0.1), (1000, 0.3))]  # above
    # measured at q1000 only, where it passes 50%: once shown as "≤ 1,000"
    records += [cell("partial", "a", 1000, 0.9)]
    analysis = run(records)
    board = rows(analysis)
    assert [board[p].q50_status for p in ("open", "guard", "partial")] == [
        "at_first_budget", "not_reached", "not_measured"]
    write_leaderboard(records, tmp_path, n_boot=50, plots=False, html=False)
    lines = (tmp_path / "leaderboard.md").read_text().splitlines()

    def row_of(profile: str) -> str:
        return next(line for line in lines if line.startswith("| ") and f" {profile} |" in line)

    assert "| below the smallest budget (≤ 100) |" in row_of("open")
    assert "| above the largest budget |" in row_of("guard")
    partial = row_of("partial")
    assert "| not measured |" in partial and "≤" not in partial


# ------------------------------------------------------------------------ ties are ties


def test_overlapping_intervals_tie_and_equal_points_tie() -> None:
    # [0.7, 0.9] and [0.6, 0.8] overlap; [0.3, 0.5] overlaps neither
    assert rank_labels([0.7, 0.6, 0.3], [0.9, 0.8, 0.5]) == ["=1", "=1", "3"]
    # without intervals, equal values are a tie and unequal ones are not
    nan = math.nan
    assert rank_labels([nan, nan, nan], [nan, nan, nan], [0.5, 0.5, 0.4]) == ["=1", "=1", "3"]
    # on the board: resistance 0.7 [0.6, 0.8] and 0.65 [0.55, 0.75] share rank 1
    board = rows(run([cell("open", "a", 100, 0.3, half_width=0.1),
                      cell("guard", "a", 100, 0.35, half_width=0.1)]))
    assert (board["open"].rank_label, board["guard"].rank_label) == ("=1", "=1")


# ------------------------------------------------------------- the scenario and the CLI


SCENARIO = {
    "version": 1, "name": "lfl", "endpoints": {"open": {"kind": "reference"}},
    "tasks": {"t": {"family": "arithmetic"}}, "attacks": {"a": {"name": "random-pool"},
                                                         "b": {"name": "synthetic"}},
    "budgets": [{"queries": 100}, {"queries": 1000}],
    "students": {"s": {"name": "lookup"}}, "seeds": [0, 1],
}


def test_the_ranking_field_is_optional_and_leaves_old_hashes_alone() -> None:
    plain = Scenario.model_validate(SCENARIO)
    assert plain.ranking is None
    # the hash as it was computed before the field existed: canonical JSON without it (nor an
    # endpoint's stream: false, added later too)
    old = {k: v for k, v in plain.model_dump(mode="json").items() if k != "ranking"}
    for ep in old.get("endpoints", {}).values():  # and the fields added after it
        assert ep.pop("stream") is False
        assert ep["prices"].pop("account_usd") == 0
    for budget in old["budgets"]:
        assert budget.pop("accounts") is None
    for attack in old["attacks"].values():
        assert attack.pop("knows") == "nothing"
    assert old["benign_traffic"].pop("cohorts") is None
    assert old.pop("clock") == {"mode": "simulated", "request_s": 1.0, "max_wait_s": 604800.0}
    assert old.pop("directions") == []
    canon = json.dumps(old, sort_keys=True, separators=(",", ":"))
    assert scenario_hash(plain) == hashlib.sha256(canon.encode()).hexdigest()
    ranked = Scenario.model_validate(
        {**SCENARIO, "ranking": {"attacks": ["a", "b"], "budgets": ["q1000"], "seeds": [0]}})
    assert ranked.ranking == Ranking(attacks=["a", "b"], budgets=["q1000"], seeds=[0])
    assert scenario_hash(ranked) != scenario_hash(plain)


@pytest.mark.parametrize(("ranking", "problem"), [
    ({"attacks": ["stealth"], "budgets": ["q100"]}, "ranking.attacks: 'stealth' is not in"),
    ({"attacks": ["a"], "budgets": ["q300"]}, "ranking.budgets: 'q300' is not in"),
    ({"attacks": ["a"], "budgets": ["q100"], "seeds": [7]}, "ranking.seeds: 7 is not in"),
    ({"attacks": ["a", "a"], "budgets": ["q100"]}, "ranking.attacks: an entry is listed twice"),
    ({"attacks": ["a"], "budgets": ["q100"], "students": ["s"]}, "Extra inputs"),
])
def test_a_ranking_names_what_the_scenario_has(ranking: dict[str, object],
                                               problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Scenario.model_validate({**SCENARIO, "ranking": ranking})


def test_the_command_line_reads_the_ranking_of_the_runs_scenario(tmp_path: Path) -> None:
    from extractbench.cli.main import main

    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    records = [cell("open", "a", 100, 0.2), cell("open", "b", 100, 0.9),
               cell("guard", "a", 100, 0.3)]
    (run_dir / "records.jsonl").write_text("".join(r.model_dump_json() + "\n"
                                                   for r in records))
    out = tmp_path / "board"
    assert main(["leaderboard", str(run_dir), "--out", str(out)]) == 0
    default = pd.read_csv(out / "leaderboard.csv").set_index("profile")
    assert not default.loc["guard", "ranked"]  # b was run against open, not against guard
    (run_dir / "scenario.yaml").write_text(
        "version: 1\nname: r\nranking: {attacks: [a], budgets: [q100]}\n")
    assert main(["leaderboard", str(run_dir), "--out", str(out)]) == 0
    declared = pd.read_csv(out / "leaderboard.csv").set_index("profile")
    assert declared["ranked"].all()
    assert declared.loc["open", "resistance"] == pytest.approx(1 - 0.2)  # b is outside
    (run_dir / "scenario.yaml").write_text(
        "version: 1\nname: r\nranking: {attacks: a, budgets: [q100]}\n")
    assert main(["leaderboard", str(run_dir), "--out", str(out)]) == 2


# ------------------------------------------------------------------ the tasks it ranks on


def test_a_ranking_over_some_tasks_ranks_the_overall_board_on_those_only() -> None:
    # t1 is the ranked comparison: open and guard, each against a and b. t2 is a curve of
    # open's alone, and targeted (measured only on t2, against its own attack c). Ranked on
    # every task, nothing could rank overall: guard and targeted each miss a task.
    records = [cell("open", a, 1000, t, task="t1") for a, t in (("a", 0.4), ("b", 0.9))]
    records += [cell("guard", a, 1000, t, task="t1") for a, t in (("a", 0.2), ("b", 0.6))]
    records += [cell("open", "a", q, 0.7, task="t2") for q in (100, 1000)]
    records += [cell("targeted", "c", 1000, 0.1, task="t2")]
    everywhere = run(records, ranking=Ranking(attacks=["a", "b"], budgets=["q1000"]))
    assert not any(s.ranked for s in everywhere.board.summaries)
    analysis = run(records, ranking=Ranking(attacks=["a", "b"], budgets=["q1000"],
                                            tasks=["t1"]))
    assert analysis.compared_tasks == ["t1"]
    assert list(analysis.ranking_sets) == ["t1"]
    board = rows(analysis)
    # guard's worst case on t1 is b at 0.6, open's b at 0.9: CIs (±0.05) apart
    assert [(s.keys[c.PROFILE], s.rank_label) for s in analysis.board.summaries
            if s.ranked] == [("guard", "1"), ("open", "2")]
    assert board["guard"].resistance.value == pytest.approx(1 - 0.6)
    assert board["open"].resistance.value == pytest.approx(1 - 0.9)  # t2 does not count
    # a profile measured only outside the ranked tasks is listed, with what it misses
    assert not board["targeted"].ranked
    assert board["targeted"].missing == "not measured against a, b at q1000"
    # t2's cells are outside: in the cells table and the plots, in no board figure
    assert ("t2", "open (t2): a at q100, q1000") in analysis.outside
    assert ("t2", "targeted (t2): c at q1000") in analysis.outside
    assert analysis.task_board is not None
    assert {s.keys[c.TASK] for s in analysis.task_board.summaries} == {"t1"}


def test_the_ranking_tasks_are_validated_merged_and_left_out_of_old_hashes() -> None:
    with pytest.raises(ValidationError, match=r"ranking\.tasks: 'nope' is not in tasks"):
        Scenario.model_validate({**SCENARIO, "ranking": {
            "attacks": ["a"], "budgets": ["q100"], "tasks": ["nope"]}})
    without = Scenario.model_validate({**SCENARIO, "ranking": {
        "attacks": ["a"], "budgets": ["q100"]}})
    tasks = list(SCENARIO["tasks"])  # type: ignore[call-overload]
    named = Scenario.model_validate({**SCENARIO, "ranking": {
        "attacks": ["a"], "budgets": ["q100"], "tasks": tasks}})
    # the hash of a ranking without tasks is what it was before the field existed
    data = without.model_dump(mode="json")
    assert data["ranking"].pop("tasks") is None
    for ep in data["endpoints"].values():
        ep.pop("stream")
        ep["prices"].pop("account_usd")
    for budget in data["budgets"]:
        budget.pop("accounts")
    data["benign_traffic"].pop("cohorts")
    data.pop("clock")
    assert data.pop("directions") == []
    for attack in data["attacks"].values():
        attack.pop("knows")
    canon = json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert scenario_hash(without) == hashlib.sha256(canon.encode()).hexdigest()
    assert scenario_hash(named) != scenario_hash(without)
    # several runs: the union of their tasks; any run ranking every task ranks every task
    from extractbench.report.requirement import merge_rankings

    one = Ranking(attacks=["a"], budgets=["q100"], tasks=["t1"])
    two = Ranking(attacks=["a"], budgets=["q100"], tasks=["t2"])
    merged = merge_rankings([one, two])
    assert merged is not None and merged.tasks == ["t1", "t2"]
    loose = merge_rankings([one, Ranking(attacks=["a"], budgets=["q100"])])
    assert loose is not None and loose.tasks is None


# --------------------------------------------------------------------- attacker compute


def test_a_worst_case_whose_student_did_not_converge_says_so(tmp_path: Path) -> None:
    # open's worst case at q1000 is b (0.9), whose student stalled in one of its two seeds;
    # a's student converged in both. A reader must see that b's figure is a lower bound.
    records = [cell("open", "a", 1000, 0.4, seed=s, train_steps=1500, converged=True)
               for s in (0, 1)]
    records += [cell("open", "b", 1000, 0.9, seed=0, train_steps=1500, converged=True),
                cell("open", "b", 1000, 0.9, seed=1, train_steps=1500, converged=False)]
    analysis = run(records)
    (row,) = analysis.board.summaries
    (point,) = row.curve
    assert (point.attack, point.unconverged) == ("b", pytest.approx(0.5))
    write_leaderboard(records, tmp_path, n_boot=50, plots=False, html=False)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "(b; not converged in 50.0% of seeds)" in md
    # the cells table gives each cell's steps, and which did not converge
    assert md.count("| 1,500 (not converged) |") == 1
    assert md.count("| 1,500 |") == 3
    # records that do not say (older runs): no claim either way
    silent = run([cell("open", "a", 1000, 0.4)])
    assert math.isnan(silent.board.summaries[0].curve[0].unconverged)


def test_the_report_says_which_tasks_it_ranks_and_warns_below_three_seeds(
        tmp_path: Path) -> None:
    records = [cell("open", a, 1000, t, task="t1", seed=s) for a, t in (("a", 0.4), ("b", 0.9))
               for s in (0, 1, 2)]
    records += [cell("guard", a, 1000, t, task="t1", seed=s)
                for a, t in (("a", 0.2), ("b", 0.6)) for s in (0, 1, 2)]
    records += [cell("open", "a", 100, 0.7, task="t2")]
    three = Ranking(attacks=["a", "b"], budgets=["q1000"], tasks=["t1"])
    write_leaderboard(records, tmp_path, n_boot=50, plots=False, html=False, ranking=three)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "ranked on the task(s) the scenario's `ranking:` lists: t1" in md
    assert "Fewer than 3 seeds" not in md
    # one task ranked: no second table repeating it
    assert "## Profiles by task" not in md
    # the same comparison on seed 0 alone is ranked, with the warning
    write_leaderboard([r for r in records if r.seed == 0], tmp_path, n_boot=50, plots=False,
                      html=False, ranking=three)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "**Fewer than 3 seeds** (1 at some pair of the set)" in md
    # two tasks compared without a declared ranking: the per-task table breaks them down
    both = [cell(p, "a", 1000, 0.5, task=t) for p in ("open", "guard") for t in ("t1", "t2")]
    write_leaderboard(both, tmp_path, n_boot=50, plots=False, html=False)
    assert "## Profiles by task" in (tmp_path / "leaderboard.md").read_text()


def test_nothing_is_ranked_when_no_task_the_ranking_lists_was_measured() -> None:
    # a curve run merged with a ranking on classification that has not run yet
    analysis = run([cell("open", "a", 1000, 0.4, task="t2")],
                   ranking=Ranking(attacks=["a"], budgets=["q1000"], tasks=["t1"]))
    (row,) = analysis.board.summaries
    assert analysis.compared_tasks == [] and not row.ranked
    assert row.missing == "not measured on t1, the task(s) the scenario's `ranking:` ranks on"


def test_a_profile_measured_only_outside_the_ranked_tasks_is_not_called_unmeasured() -> None:
    # utility is measured everywhere; targeted's is on t2, which the ranking does not cover
    records = [cell(p, "a", 1000, 0.3, task="t1", utility=1.0) for p in ("open", "guard")]
    records += [cell("targeted", "c", 1000, 0.1, task="t2", utility=1.0)]
    analysis = run(records, ranking=Ranking(attacks=["a"], budgets=["q1000"], tasks=["t1"]))
    targeted = rows(analysis)["targeted"]
    assert targeted.unranked_reason == "incomplete: not measured against a at q1000"


def test_the_cells_table_gives_each_campaigns_simulated_length(tmp_path: Path) -> None:
    from extractbench.report.sections import sim_time

    records = [cell("open", "a", 1000, 0.4, sim_s=31.25),
               cell("quota", "a", 1000, 0.4, sim_s=3 * 86400 + 120.0),
               cell("vendor", "a", 1000, 0.4)]  # a wall-clock cell says nothing
    write_leaderboard(records, tmp_path, n_boot=50, plots=False, html=False)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| sim time |" in md
    assert md.count("| 31 s |") == 1 and md.count("| 3.0 d |") == 1
    assert [sim_time(x) for x in (90, 1800, 7200, None)] == ["90 s", "30 min", "2.0 h", "–"]
