"""The report's profile tables: a leaderboard frame as a
:class:`~extractbench.report.document.Table` with the definition of every column.

Headers are display labels (``worst case @ q30``); cells read the columns of
:mod:`extractbench.report.columns`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from extractbench.report import columns as c
from extractbench.report.board import NOT_MEASURED
from extractbench.report.document import Est, Table, TableCell, est, missing, num, pct, usd

__all__ = ["DEFINITIONS", "profile_table"]

DEFINITIONS = {
    "rank": "position by resistance among ranked profiles (complete, and keeping the utility "
            "threshold); `=k` marks a tie: the resistance CI overlaps that of the first "
            "profile ranked k",
    "why not ranked": "`incomplete: ...`: what of the ranking set (attacks, budgets, seeds) "
                      "the profile was not measured on; or its utility below the threshold; "
                      "or `harmed ... > 5%`: its defenses acted on too many benign keys",
    "utility": "defended / teacher held-out score as a benign user sees it (1 = no loss), "
               "with its 95% CI",
    "resistance": "1 − worst-case transfer at the largest common budget (1 = nothing leaked, "
                  "0 = the student matches the teacher), with the worst attack's 95% CI",
    "worst case": "max over the ranking set's attacks and the scenario's student recipes of "
                  "the seed-mean transfer at this budget, its 95% CI and the attack (· "
                  "student) that achieved it; `spent 600 of 1,000`: the campaign could not "
                  "spend its budget (e.g. attack pool exhausted, keys refused) and the point "
                  "sits at what it spent; `not converged`: that student's training had not "
                  "plateaued, so an attacker with more compute could reach more; transfer = "
                  "(student − base) / (teacher − base)",
    "AUC": "area under worst-case transfer vs log10(queries spent) over the common budgets, "
           "divided by its log-range: the mean leak over them; – unless every common budget "
           "was measured",
    "queries to 50%": "queries the worst-case attacker spent to reach 50% transfer, "
                      "interpolated in log-spend between the common budgets; `below the "
                      "smallest budget`: the smallest already did; `above the largest "
                      "budget`: none did; `not measured`: some common budget was not",
    "$ to 50%": "dollars the worst-case attacker spent to reach 50% transfer, at the "
                "endpoint's configured prices",
    "flagged at": "attacker query index at which the defense first flagged the worst-case "
                  "attacker at the largest common budget (mean over the seeds it was flagged "
                  "in)",
    "harmed": "benign keys any defense acted on (flagged, refused, throttled, given a "
              "degraded or poisoned answer, or something they asked for taken away: "
              "logprobs, reasoning, logit_bias) / benign keys, pooled over the profile's "
              "cells, with a Wilson 95% CI; a profile above 5% is not ranked",
    "cohorts": "per benign cohort: its utility (what it received / the teacher's score) and "
               "its harmed keys; a profile is ranked only if every cohort keeps the utility "
               "threshold and has at most 5% harmed keys",
    "FPR": "false-positive rate: benign keys flagged / benign keys, pooled over the "
           "profile's cells",
    "watermark z": "watermark test statistic on the worst-case student's outputs, next to the "
                   "same statistic for a clean control student",
    "teacher": "held-out score of the undefended upstream model",
}
"""The one-line meaning of each column header (an HTML tooltip and the Markdown legend)."""


def _budget_labels(table: pd.DataFrame) -> list[str]:
    """The budgets of a leaderboard table, in its column order."""
    suffix = "_attack"
    return [name[len(c.WC_PREFIX):-len(suffix)] for name in table.columns
            if name.startswith(c.WC_PREFIX) and name.endswith(suffix)]


def _q50(row: Any, name: str, fmt: Callable[[object], str]) -> Est:
    """The crossing in words: a value, ``below the smallest budget (≤ x)``, ``above the
    largest budget`` or ``not measured``, never one dressed as another."""
    status = row.get(c.Q50_STATUS)
    value = row.get(name)
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    bounds = (fmt(low), fmt(high)) if not (missing(low) or missing(high)) else (None, None)
    if status == NOT_MEASURED or (status != "not_reached" and missing(value)):
        return Est("not measured")
    if status == "not_reached":
        lower = "" if missing(low) or math.isinf(float(low)) else f"CI lower bound {fmt(low)}"
        return Est("above the largest budget", note=lower)
    if status == "at_first_budget":
        return Est("below the smallest budget", note=f"≤ {fmt(value)}")
    return Est(fmt(value), *bounds)


def _spent_note(row: Any, label: str) -> str:
    """``spent 600 of 1,000`` when the campaign behind a worst case could not spend its
    budget (``in 33.3% of seeds`` when only some seeds could not)."""
    short = row.get(c.wc(label, "_short"))
    if missing(short) or not float(short) > 0:
        return ""
    spent, limit = row.get(c.wc(label, "_queries")), row.get(c.wc(label, "_limit"))
    text = (f"spent {num(spent, 0)} of {num(limit, 0)}" if not missing(limit)
            else f"budget not spent ({num(spent, 0)} queries)")
    return text if float(short) >= 1 else f"{text}, short in {pct(short)} of seeds"


def _unconverged_note(row: Any, label: str) -> str:
    """``not converged`` when the student behind a worst case stopped before its loss
    plateaued (``in 33.3% of seeds`` when only some did): more attacker compute could raise
    that figure."""
    share = row.get(c.wc(label, "_unconverged"))
    if missing(share) or not float(share) > 0:
        return ""
    return "not converged" if float(share) >= 1 else f"not converged in {pct(share)} of seeds"


def _flag_cell(row: Any) -> TableCell:
    frac = row.get(c.FLAGGED_FRAC)
    if missing(frac):
        return "–"
    if float(frac) == 0:
        return "never"
    cell = est(row, c.FLAGGED_AT, lambda v: num(v, 0))
    note = "" if float(frac) >= 1 else f"in {pct(frac)} of seeds"
    return Est(cell.value, cell.low, cell.high, note)


def profile_table(table: pd.DataFrame, keys: Sequence[str], legend: bool) -> Table:
    """A leaderboard frame as a report table, one row per profile (and task): the optional
    columns only when some row has them."""
    labels = _budget_labels(table)
    students = {v for lb in labels for v in table[c.wc(lb, "_student")]
                if isinstance(v, str) and v}
    has = {name: name in table and table[name].notna().any() for name in
           (c.UTILITY, c.FPR, c.HARMED_RATE, c.BENIGN_COHORTS, c.FLAGGED_FRAC,
            c.WATERMARK_Z)}
    headers = ["rank", *keys]
    if not all(table[c.RANKED]):
        headers.append("why not ranked")
    headers += ["utility"] if has[c.UTILITY] else []
    priced = c.Q50_USD in table and bool(
        (pd.to_numeric(table[c.Q50_USD], errors="coerce") > 0).any())
    headers += ["resistance", *(f"worst case @ {lb}" for lb in labels), "AUC",
                "queries to 50%", *(["$ to 50%"] if priced else [])]
    headers += ["flagged at"] if has[c.FLAGGED_FRAC] else []
    headers += ["FPR"] if has[c.FPR] else []
    headers += ["harmed"] if has[c.HARMED_RATE] else []
    headers += ["cohorts"] if has[c.BENIGN_COHORTS] else []
    headers += ["watermark z"] if has[c.WATERMARK_Z] else []
    headers.append("teacher")
    rows: list[list[TableCell]] = []
    for r in (dict(x) for _, x in table.iterrows()):
        cells: list[TableCell] = [str(r[c.RANK_LABEL]) or "–", *(str(r[k]) for k in keys)]
        if "why not ranked" in headers:
            cells.append(str(r.get(c.UNRANKED_REASON) or ""))
        if has[c.UTILITY]:
            cells.append(est(r, c.UTILITY))
        cells.append(est(r, c.RESISTANCE))
        for lb in labels:
            attack = r.get(c.wc(lb, "_attack"))
            attack = attack if isinstance(attack, str) else ""
            if len(students) > 1 and attack:
                attack = f"{attack} · {r[c.wc(lb, '_student')]}"
            notes = (attack, _spent_note(r, lb), _unconverged_note(r, lb))
            cells.append(est(r, c.wc(lb), note="; ".join(t for t in notes if t)))
        cells += [est(r, c.AUC), _q50(r, c.Q50_QUERIES, lambda v: num(v, 0))]
        if priced:
            cells.append(_q50(r, c.Q50_USD, usd))
        if has[c.FLAGGED_FRAC]:
            cells.append(_flag_cell(r))
        if has[c.FPR]:
            cells.append(est(r, c.FPR, pct))
        if has[c.HARMED_RATE]:
            cells.append(est(r, c.HARMED_RATE, pct))
        if has[c.BENIGN_COHORTS]:
            value = r.get(c.BENIGN_COHORTS)
            cells.append(value if isinstance(value, str) else "–")
        if has[c.WATERMARK_Z]:
            control = r.get(c.WATERMARK_CONTROL_Z)
            cells.append(est(r, c.WATERMARK_Z, note=f"control {num(control)}"))
        cells.append(num(r.get(c.TEACHER_SCORE)))
        rows.append(cells)
    definitions = {h: DEFINITIONS[h.split(" @ ")[0]] for h in headers
                   if h.split(" @ ")[0] in DEFINITIONS}
    return Table(headers, rows, definitions, legend=legend)
