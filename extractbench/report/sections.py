"""The leaderboard report's sections, rendered from an
:class:`~extractbench.report.analysis.Analysis`: provenance, ranked and unranked profiles, the
per-task table, detection, plots, every cell and the cells that failed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from extractbench.report import columns as c
from extractbench.report.analysis import Analysis
from extractbench.report.board import MAX_HARMED, MIN_BENIGN_KEYS
from extractbench.report.detection_table import detection_table
from extractbench.report.document import (
    Figure,
    Section,
    Table,
    TableCell,
    est,
    missing,
    num,
    sim_time,
    usd,
)
from extractbench.report.profile_table import profile_table
from extractbench.report.requirement import DECLARED

__all__ = ["CAPTIONS", "report_sections", "sim_time"]


def _header(frame: pd.DataFrame, utility_threshold: float) -> Section:
    """Provenance of the numbers and how to read them."""
    def uniq(column: str) -> list[str]:
        return sorted({str(v) for v in frame[column].dropna()}) if column in frame else []

    scenarios = frame.drop_duplicates([c.SCENARIO_NAME, c.SCENARIO_HASH])
    shas = frame.drop_duplicates([c.GIT_SHA, c.GIT_DIRTY])
    ok = int((frame[c.STATUS] == c.OK).sum())
    bullets = [
        "runs: " + ", ".join(f"`{r}`" for r in uniq(c.RUN_ID)),
        "scenarios: " + ", ".join(f"`{s.scenario_name}` (sha256 `{str(s.scenario_hash)[:12]}`)"
                                  for s in scenarios.itertuples()),
        "code: " + ", ".join(f"git `{str(s.git_sha)[:12]}`" + (" (dirty)" if s.git_dirty
                                                                else "")
                             for s in shas.itertuples())
        + f"; extractbench {', '.join(uniq(c.EXTRACTBENCH_VERSION))}",
        f"generated: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"cells: {ok} ok, {len(frame) - ok} skipped or failed",
    ]
    text = (
        "Transfer = (student − base) / (teacher − base) on held-out items, unclipped (0 = no "
        "better than a student trained without teacher data, 1 = as good as the teacher); "
        "brackets are 95% bootstrap CIs. *Worst case* = max over the ranking set's attacks and "
        "the scenario's student recipes of the seed-mean transfer (attack · student in "
        "parentheses; `not converged` when that student had not finished learning, so more "
        "attacker compute could reach more). *Resistance* = 1 − worst-case "
        "transfer at the largest common budget; AUC and queries to 50% are over the common "
        "budgets, against the queries actually spent. Profiles are ranked only when measured "
        "on the whole ranking set (every attack, budget and seed of it), when their utility "
        f"is at least {utility_threshold:.2f} and, where the records count harms, when their "
        f"defenses acted on at most {MAX_HARMED:.0%} of the benign keys that ran alongside the "
        "attack (*harmed*: flagged, refused, throttled, degraded, or something asked for "
        f"taken away), out of at least {MIN_BENIGN_KEYS} keys pooled over the profile's "
        "cells. Where the scenario names benign cohorts, each cohort must pass on its own: "
        f"utility at least {utility_threshold:.2f}, at most {MAX_HARMED:.0%} of its keys "
        f"harmed, at least {MIN_BENIGN_KEYS} keys (these are point estimates; the *cohorts* "
        "column gives their 95% intervals). Utility is the held-out score through the "
        "defense as light benign users see it: the held-out prompts spread over ten keys, "
        "on a fresh defense state with no attack running; so it cannot show what heavy "
        "legitimate users lose (read *harmed*, FPR and *cohorts* for that). Rank `=k`: a "
        "tie (the CIs overlap). Hover a column header in the HTML report for its definition; "
        "docs/leaderboard.md defines every column."
    )
    return Section("", bullets=bullets, after=[text])


def _spent(row: dict[str, object]) -> str:
    """The queries a cell spent, ``600 of 1,000`` when it could not spend its budget."""
    spent, limit = num(row.get(c.QUERIES)), row.get(c.BUDGET_QUERIES)
    short = row.get(c.BUDGET_SHORT)
    if not missing(short) and bool(short):
        return f"{spent} of {num(limit, 0)}" if not missing(limit) else f"{spent} (short)"
    return spent


def _steps(row: dict[str, object]) -> str:
    """The optimiser steps the cell's student ran, ``(not converged)`` when its training had
    not plateaued; a dash when the record does not say."""
    steps = row.get(c.TRAIN_STEPS)
    if missing(steps):
        return "–"
    converged = row.get(c.CONVERGED)
    stalled = not missing(converged) and not bool(converged)
    return num(steps, 0) + (" (not converged)" if stalled else "")


def _cells_table(frame: pd.DataFrame) -> Table:
    """Every ok cell, one row per seed."""
    ok = frame[frame[c.STATUS] == c.OK].sort_values(
        [c.PROFILE, c.TASK, c.ATTACK, c.BUDGET_QUERIES, c.BUDGET_LABEL, c.STUDENT, c.SEED],
        kind="stable")
    headers = ["profile", "task", "attack", "budget", "student", "seed", "teacher", "base",
               "student score", "transfer", "fidelity", "queries", "tokens", "cost $",
               "train steps", "sim time", "wall s"]
    rows: list[list[TableCell]] = [
        [str(r[c.PROFILE]), str(r[c.TASK]), str(r[c.ATTACK]), str(r[c.BUDGET_LABEL]),
         str(r[c.STUDENT]), str(r[c.SEED]), num(r[c.TEACHER_SCORE]), num(r[c.BASE_SCORE]),
         num(r[c.STUDENT_SCORE]), est(r, c.TRANSFER), num(r[c.FIDELITY]), _spent(r),
         num(r[c.TOKENS]), usd(r[c.COST_USD]), _steps(r), sim_time(r.get(c.SIM_S)),
         num(r[c.WALL_S], 1)]
        for r in (dict(x) for _, x in ok.iterrows())
    ]
    return Table(headers, rows)


def _failed(frame: pd.DataFrame) -> Section | None:
    """Skipped and failed cells with the first line of their reason."""
    bad = frame[frame[c.STATUS] != c.OK]
    if bad.empty:
        return None
    bullets = []
    for r in bad.itertuples():
        reason = str(r.error).splitlines()[0] if isinstance(r.error, str) and r.error \
            else "(no reason recorded)"
        bullets.append(f"`{r.cell_id}` — {r.status}: {reason}")
    return Section("Skipped and failed cells", ["Not counted in any number above."], bullets)


CAPTIONS = {
    "transfer_vs_budget": "Transfer vs queries actually spent (log scale), one panel per "
                          "attack plus the worst case; shaded bands are 95% bootstrap CIs. A "
                          "hollow marker is a budget that could not be spent (e.g. attack "
                          "pool exhausted: `600 of 1,000`), drawn at what was spent. 0 = a "
                          "student trained without teacher data, 1 = the teacher.",
    "transfer_vs_cost": "Transfer vs dollars spent (or tokens when every cost is $0), one "
                        "panel per attack; bars are 95% CIs.",
    "resistance_vs_utility": "Resistance at the largest common budget vs utility, with 95% "
                             "CIs, for the profiles measured on the whole ranking set. Filled "
                             "markers are on the Pareto front (no other profile has both "
                             "higher utility and higher resistance); profiles left of the "
                             "dotted line are not ranked.",
    "detection_timeline": "Detection timeline: transfer vs attacker queries, one panel per "
                          "attack. A vertical line marks the query at which the defense first "
                          "flagged the attacker; a star marks the transfer of a student "
                          "trained only on what was harvested before the flag.",
    "detection_calibration": "Detector calibration: for each defended profile and attack at "
                             "its largest budget (mean over seeds), the share of attacker "
                             "keys above thresholds calibrated on benign streams to 1% and "
                             "5% FPR (bars), and the ROC AUC against the benign keys the "
                             "test scored (diamond; 0.5 is chance). Each cell's best test "
                             "(highest tested AUC) is shown, named under the bars.",
}
"""The caption of each plot, by file stem."""


def _figures(paths: Sequence[Path]) -> list[Figure]:
    """The written PNGs (with their SVGs) as captioned figures."""
    out = []
    for png in (p for p in paths if p.suffix == ".png"):
        base = next((k for k in CAPTIONS if png.stem.startswith(k)), "")
        caption = CAPTIONS.get(base, png.stem)
        suffix = png.stem[len(base):].lstrip("-")
        if suffix:
            caption = f"({suffix}) {caption}"
        svg = png.with_suffix(".svg")
        out.append(Figure(png, caption, svg if svg in paths else None))
    return out


MIN_SEEDS = 3
"""Seeds a ranked comparison needs before the board stops warning that its ties ignore the
spread between training runs (issue 13)."""


KNOWS = {"nothing": "nothing of the defenses", "kind": "the defenses' kind (and so their "
         "default parameters)", "params": "the defenses' parameters"}
"""The threat models (an attack's ``knows:``), in words."""


def _threat_model(analysis: Analysis, attacks: set[str]) -> str:
    """The threat model the worst case assumes: the most any attack of the set knew."""
    cells = analysis.cells
    if "knows" not in cells or not attacks:
        return ""
    known = set(cells.loc[cells[c.ATTACK].isin(attacks), "knows"].dropna())
    best = next((k for k in ("params", "kind", "nothing") if k in known), None)
    if best is None:
        return ""
    if best == "nothing":
        return (" Threat model: no attack of the set knew anything of the defenses (`knows:`"
                " nothing), so the worst case is over passive attackers only.")
    return (f" Threat model: the worst case includes attackers who know {KNOWS[best]} (the "
            "attacks' `knows:`); an attacker who knows more is not in it.")


def _ranking_text(analysis: Analysis, tasks: Sequence[str], budgets: Sequence[str] | None
                  ) -> list[str]:
    """What the profiles below are compared on: each task's ranking set and where it comes
    from, the common budgets, and what was measured outside the set."""
    sets = [analysis.ranking_sets[t] for t in tasks if t in analysis.ranking_sets]
    if not sets:
        return []
    sources = {s.why() for s in sets}
    if len(sets) == 1:
        text = f"Ranked on {sets[0].describe()}: {sets[0].why()}."
    elif len(sources) == 1:
        text = (f"Ranked on {sources.pop()}: "
                + "; ".join(f"*{s.task}*: {s.describe()}" for s in sets) + ".")
    else:
        text = "Ranked on: " + "; ".join(f"*{s.task}*: {s.describe()} ({s.why()})"
                                         for s in sets) + "."
    if budgets is not None:
        text += (" Common budgets: " + ", ".join(budgets) + "." if budgets
                 else " The tasks share no budget, so no figure is comparable.")
    out = [text + _threat_model(analysis, {pair[0] for s in sets for pair in s.pairs})]
    thin = sorted({len(seeds) for s in sets for seeds in s.seeds.values()
                   if len(seeds) < MIN_SEEDS})
    if thin:
        out.append(f"**Fewer than {MIN_SEEDS} seeds** ({' or '.join(map(str, thin))} at some "
                   "pair of the set): the CIs and ties cover held-out items, not the spread "
                   "between training runs, which dominates near a curve's transition. Add "
                   "seeds (`seeds:` and `ranking.seeds`) before citing a rank.")
    extra = [line for task, line in analysis.outside if task in tasks]
    if extra:
        out.append("Measured but outside the ranking set (in *Cells* and the plots, not in "
                   "these figures): " + "; ".join(extra) + ".")
    return out


def report_sections(analysis: Analysis, figures: Sequence[Path]) -> list[Section]:
    """The leaderboard report: provenance, ranked, incomplete and unranked profiles, per-task
    table, detection, plots (the files in ``figures``), every cell, failed cells."""
    frame, table, task_table = analysis.cells, analysis.table, analysis.task_table
    utility_threshold, compared_tasks = analysis.utility_threshold, analysis.compared_tasks
    sections = [_header(frame, utility_threshold)]
    measured = c.UTILITY in table and table[c.UTILITY].notna().any()
    complete = table[c.COMPLETE] if c.COMPLETE in table else pd.Series(True, index=table.index)
    ranked = table[table[c.RANKED]]
    incomplete = table[~table[c.RANKED] & ~complete]
    unranked = table[~table[c.RANKED] & complete]
    scope = _ranking_text(analysis, compared_tasks, analysis.compared_budgets)
    declared = bool(analysis.ranking_sets) and all(
        s.source == DECLARED for s in analysis.ranking_sets.values())
    if not compared_tasks:
        scope.append("No task the ranking covers was measured, so nothing is ranked.")
    elif set(compared_tasks) != set(frame[c.TASK]):
        scope.append(
            f"Profiles are ranked on the task(s) the scenario's `ranking:` lists: "
            f"{', '.join(compared_tasks)}; the other tasks' cells are in *Cells* and the plots."
            if declared else
            f"Profiles are compared on the task(s) every profile was measured on: "
            f"{', '.join(compared_tasks)}. The other tasks are in *Profiles by task*.")
    if measured:
        title = f"Ranked profiles (utility ≥ {utility_threshold:.2f})"
        intro = list(scope)
    else:
        title = "Profiles"
        intro = ["Utility was not measured for any profile, so the ranking is by resistance "
                 "alone: a defense that wrecks the service for legitimate users could rank "
                 "first. Measure benign traffic to gate the ranking.", *scope]
    legend = True
    if ranked.empty:
        intro.append("No profile was measured on the whole ranking set, so none is ranked.")
    sections.append(Section(title, intro, table=profile_table(ranked, [c.PROFILE], legend)
                            if not ranked.empty else None))
    legend = ranked.empty
    if not incomplete.empty:
        sections.append(Section(
            "Incomplete: not measured on the whole ranking set",
            ["These profiles miss part of the ranking set (the reason says what), so they are "
             "not ranked: a profile that faced fewer attacks, budgets or seeds would look "
             "stronger than one measured on all of them. Their figures are over the part of "
             "the set they were measured on and are not comparable with the ranked ones; AUC "
             "and queries to 50% need every common budget."],
            table=profile_table(incomplete, [c.PROFILE], legend)))
        legend = False
    if not unranked.empty:
        sections.append(Section(
            f"Not ranked: utility below {utility_threshold:.2f}, not measured, or benign keys "
            "harmed",
            ["These profiles keep less than the threshold of the teacher's quality for "
             "legitimate users or one cohort of them (or were not measured on benign "
             f"traffic), or their defenses acted on more than {MAX_HARMED:.0%} of the benign "
             f"keys or of one cohort's, or fewer than {MIN_BENIGN_KEYS} benign keys (in all or "
             "in a cohort) ran beside them; the reason column says which. Their resistance "
             "is shown but not ranked."],
            table=profile_table(unranked, [c.PROFILE], legend)))
    tasks = list(dict.fromkeys(str(t) for t in task_table[c.TASK])) \
        if task_table is not None else []
    if task_table is not None and tasks and not (len(tasks) == 1 and tasks == compared_tasks):
        # one task ranked alone would repeat the table above
        sections.append(Section("Profiles by task", [
            "The same figures per task family; ranks are within each task's table, each on "
            "its own ranking set and common budgets.", *_ranking_text(analysis, tasks, None)],
            table=profile_table(task_table, [c.PROFILE, c.TASK], False)))
    detection = detection_table(analysis.detection)
    if detection is not None:
        sections.append(Section("Detection and attribution", [
            "Per profile and attack at its largest budget (means over seeds). *Transfer at "
            "flag*: a student trained only on what was harvested before the first flag "
            "(transfer-before-detection). Where the detector was calibrated (a simulated "
            "clock), its thresholds are set on benign streams other than the cell's to 1% and "
            "5% FPR: *TPR* is the share of attacker keys above them (the FPR they gave on the "
            "cell's own benign keys in parentheses), *AUC tested* the ROC AUC against the "
            "benign keys the test scored, and *queries to 5% threshold* the attacker queries "
            "until a key crossed it; each cell shows its best test (highest tested AUC), which "
            "favours the detector. *Sim time to 50%* is an upper bound (`≤`): the first "
            "harvest prefix whose student reached 50% transfer. The watermark z on the "
            "student's outputs is next to the z of a clean control student: only the "
            "difference is evidence."], table=detection))
    figs = _figures(figures)
    if figs:
        sections.append(Section("Plots", figures=figs))
    sections.append(Section("Cells", table=_cells_table(frame)))
    failed = _failed(frame)
    if failed is not None:
        sections.append(failed)
    return sections
