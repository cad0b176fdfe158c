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
from extractbench.report.document import Est, Table, TableCell, est, missing, num, pct, usd

__all__ = ["DEFINITIONS", "profile_table"]

DEFINITIONS = {
    "rank": "position by resistance among ranked profiles; `=k` marks a tie: the resistance "
            "CI overlaps that of the first profile ranked k",
    "utility": "defended / teacher held-out score as a benign user sees it (1 = no loss), "
               "with its 95% CI",
    "resistance": "1 − worst-case transfer at the largest budget (1 = nothing leaked, 0 = the "
                  "student matches the teacher), with the worst attack's 95% CI",
    "worst case": "max over attacks of the seed-mean transfer at this budget, its 95% CI and "
                  "the attack that achieved it; transfer = (student − base) / (teacher − base)",
    "AUC": "area under worst-case transfer vs log10(budget), divided by the log-range of the "
           "budgets: the mean leak over the measured budgets",
    "queries to 50%": "queries the worst-case attacker needed to reach 50% transfer, "
                      "interpolated in log-budget; ≤ means the smallest budget already did",
    "$ to 50%": "dollars the worst-case attacker spent to reach 50% transfer, at the "
                "endpoint's configured prices",
    "flagged at": "attacker query index at which the defense first flagged the worst-case "
                  "attacker at the largest budget (mean over the seeds it was flagged in)",
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
    status = row.get(c.Q50_STATUS)
    value = row.get(name)
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    bounds = (fmt(low), fmt(high)) if not (missing(low) or missing(high)) else (None, None)
    if status == "not_reached":
        lower = "" if missing(low) or math.isinf(float(low)) else f"CI lower bound {fmt(low)}"
        return Est("not reached within budget", note=lower)
    text = fmt(value)
    return Est(f"≤ {text}" if status == "at_first_budget" else text, *bounds)


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
           (c.UTILITY, c.FPR, c.FLAGGED_FRAC, c.WATERMARK_Z)}
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
            cells.append(est(r, c.wc(lb), note=attack))
        cells += [est(r, c.AUC), _q50(r, c.Q50_QUERIES, lambda v: num(v, 0))]
        if priced:
            cells.append(_q50(r, c.Q50_USD, usd))
        if has[c.FLAGGED_FRAC]:
            cells.append(_flag_cell(r))
        if has[c.FPR]:
            cells.append(est(r, c.FPR, pct))
        if has[c.WATERMARK_Z]:
            control = r.get(c.WATERMARK_CONTROL_Z)
            cells.append(est(r, c.WATERMARK_Z, note=f"control {num(control)}"))
        cells.append(num(r.get(c.TEACHER_SCORE)))
        rows.append(cells)
    definitions = {h: DEFINITIONS[h.split(" @ ")[0]] for h in headers
                   if h.split(" @ ")[0] in DEFINITIONS}
    return Table(headers, rows, definitions, legend=legend)
