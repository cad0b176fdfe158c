"""The leaderboard report as a small document model, rendered to Markdown or to one
self-contained static HTML page.

A report is a list of :class:`Section` s: paragraphs, bullet lists, a :class:`Table` whose
cells are plain text or an :class:`Est` (a figure with its confidence interval), and figures
(PNG/SVG files). :func:`render_markdown` links the PNGs next to the ``.md`` file;
:func:`render_html` embeds every figure (SVG when there is one, else PNG) as a base64 ``data:``
URI and inlines its CSS, so the page has no external assets and can be mailed or published as
one file. Text in paragraphs may use ``code`` spans and *emphasis*; everything else is escaped.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Est",
    "Figure",
    "Section",
    "Table",
    "TableCell",
    "render_html",
    "render_markdown",
    "report_sections",
]


@dataclass(frozen=True)
class Est:
    """A figure with its confidence interval, already formatted (``low``/``high`` ``None``:
    no interval). ``note`` follows in parentheses, e.g. the attack that achieved it."""

    value: str
    low: str | None = None
    high: str | None = None
    note: str = ""

    def markdown(self) -> str:
        text = self.value
        if self.low is not None and self.high is not None:
            text += f" [{self.low}, {self.high}]"
        return f"{text} ({self.note})" if self.note else text


TableCell = str | Est


@dataclass(frozen=True)
class Table:
    """Rows of cells under headers; ``definitions`` maps a header to its one-line meaning
    (an HTML tooltip; the Markdown report lists them under the table when ``legend``)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[TableCell]]
    definitions: dict[str, str] = field(default_factory=dict)
    legend: bool = False


@dataclass(frozen=True)
class Figure:
    """A plot written as ``<stem>.png`` (and ``<stem>.svg`` when ``svg``)."""

    png: Path
    caption: str
    svg: Path | None = None


@dataclass(frozen=True)
class Section:
    title: str
    paragraphs: Sequence[str] = ()
    bullets: Sequence[str] = ()
    table: Table | None = None
    figures: Sequence[Figure] = ()
    after: Sequence[str] = ()
    """Paragraphs shown after the table."""


def _legend_items(table: Table) -> list[tuple[str, str]]:
    """(header, definition) for the headers shown; columns that share a definition (one per
    budget: ``worst case @ q30``, ...) are listed once as ``worst case @ budget``."""
    seen: dict[str, str] = {}
    for header in table.headers:
        text = table.definitions.get(header)
        if text is not None:
            seen.setdefault(text, header.split(" @ ")[0] + (" @ budget" if " @ " in header
                                                            else ""))
    return [(header, text) for text, header in seen.items()]


# ------------------------------------------------------------------------------ markdown


def _md_cell(cell: TableCell) -> str:
    text = cell.markdown() if isinstance(cell, Est) else str(cell)
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    out = [line([_md_cell(h) for h in table.headers]), line(["---"] * len(table.headers))]
    out += [line([_md_cell(c) for c in row]) for row in table.rows]
    out.append("")
    if table.legend and table.definitions:
        out += [f"- **{h}**: {d}" for h, d in _legend_items(table)]
        out.append("")
    return out


def render_markdown(title: str, sections: Sequence[Section]) -> str:
    """The report as GitHub-flavoured Markdown (figures linked by file name)."""
    lines = [f"# {title}", ""]
    for section in sections:
        if section.title:
            lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        if section.bullets:
            lines += [f"- {b}" for b in section.bullets] + [""]
        if section.table is not None:
            lines += _md_table(section.table)
        for paragraph in section.after:
            lines += [paragraph, ""]
        for fig in section.figures:
            lines += [f"![{fig.caption}]({fig.png.name})", "", f"*{fig.caption}*", ""]
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------- html

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#111;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;
border-bottom:1px solid #ccc;padding-bottom:.2rem}
code{background:#f3f3f3;padding:0 .2em;border-radius:3px;font-size:.92em}
.wrap{overflow-x:auto}table{border-collapse:collapse;font-size:.86rem;margin:.6rem 0}
th,td{border-bottom:1px solid #ddd;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f5f5f5;font-weight:600;white-space:nowrap}
th[title]{text-decoration:underline dotted;cursor:help}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.ci{color:#555;font-size:.85em}.note{color:#333;font-size:.85em;font-style:italic}
tbody tr:nth-child(even){background:#fafafa}
figure{margin:1.2rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.88rem;color:#333;margin-top:.3rem}
dl.defs dt{font-weight:600;margin-top:.4rem}dl.defs dd{margin-left:1.2rem}
nav ul{columns:2;font-size:.9rem}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}figure{break-inside:avoid}}
"""

_CODE = re.compile(r"`([^`]+)`")
_EM = re.compile(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline(text: str) -> str:
    """Escape ``text`` and turn its ``code``, **bold** and *emphasis* spans into HTML."""
    escaped = html.escape(text, quote=False)
    escaped = _CODE.sub(r"<code>\1</code>", escaped)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return _EM.sub(r"<em>\1</em>", escaped)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _html_cell(cell: TableCell) -> str:
    if isinstance(cell, Est):
        out = html.escape(cell.value)
        if cell.low is not None and cell.high is not None:
            out += f' <span class="ci">[{html.escape(cell.low)}, {html.escape(cell.high)}]</span>'
        if cell.note:
            out += f' <span class="note">{html.escape(cell.note)}</span>'
        return f'<td class="num">{out}</td>'
    return f"<td>{_inline(str(cell))}</td>"


def _html_table(table: Table) -> list[str]:
    head = "".join(
        f'<th title="{html.escape(table.definitions[h].replace("`", ""))}">'
        f"{html.escape(h)}</th>"
        if h in table.definitions else f"<th>{html.escape(h)}</th>"
        for h in table.headers
    )
    body = ["<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in table.rows]
    out = ['<div class="wrap"><table>', f"<thead><tr>{head}</tr></thead>", "<tbody>", *body,
           "</tbody></table></div>"]
    if table.legend and table.definitions:
        out.append('<dl class="defs">')
        out += [f"<dt>{html.escape(h)}</dt><dd>{_inline(d)}</dd>"
                for h, d in _legend_items(table)]
        out.append("</dl>")
    return out


def _data_uri(path: Path) -> str:
    mime = "image/svg+xml" if path.suffix == ".svg" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _html_figure(fig: Figure) -> list[str]:
    source = fig.svg if fig.svg is not None and fig.svg.exists() else fig.png
    alt = html.escape(fig.caption, quote=True)
    return ["<figure>", f'<img src="{_data_uri(source)}" alt="{alt}">',
            f"<figcaption>{_inline(fig.caption)}</figcaption>", "</figure>"]


def render_html(title: str, sections: Sequence[Section]) -> str:
    """The report as one self-contained HTML page (inline CSS, figures as data URIs)."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>",
             "<body>", f"<h1>{html.escape(title)}</h1>"]
    titled = [s for s in sections if s.title]
    if len(titled) > 2:
        parts.append("<nav><ul>" + "".join(
            f'<li><a href="#{_slug(s.title)}">{html.escape(s.title)}</a></li>' for s in titled)
            + "</ul></nav>")
    for section in sections:
        if section.title:
            parts.append(f'<h2 id="{_slug(section.title)}">{html.escape(section.title)}</h2>')
        parts += [f"<p>{_inline(p)}</p>" for p in section.paragraphs]
        if section.bullets:
            parts.append("<ul>" + "".join(f"<li>{_inline(b)}</li>" for b in section.bullets)
                         + "</ul>")
        if section.table is not None:
            parts += _html_table(section.table)
        parts += [f"<p>{_inline(p)}</p>" for p in section.after]
        for fig in section.figures:
            parts += _html_figure(fig)
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------- the leaderboard report

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


def _missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def num(value: object, digits: int = 2) -> str:
    """A number for a table: a dash when missing, thousands separators for large integers."""
    if _missing(value):
        return "–"
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    number = float(value)  # type: ignore[arg-type]
    if math.isinf(number):
        return "not reached" if number > 0 else "−∞"
    if digits == 0 or (number.is_integer() and abs(number) >= 100):
        return f"{number:,.0f}"
    return f"{number:.{digits}f}"


def usd(value: object) -> str:
    text = num(value)
    if text in ("–", "not reached"):
        return text
    return f"${float(value):.3g}"  # type: ignore[arg-type]


def pct(value: object) -> str:
    return "–" if _missing(value) else f"{100 * float(value):.1f}%"  # type: ignore[arg-type]


def est(row: Any, name: str, fmt: Callable[[object], str] = num, note: str = "") -> Est:
    """``row[name]`` with ``row[name_low]``/``row[name_high]`` as an :class:`Est`."""
    value = row.get(name)
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    if _missing(value):
        return Est("–")
    if _missing(low) or _missing(high):
        return Est(fmt(value), note=note)
    return Est(fmt(value), fmt(low), fmt(high), note=note)


def _header(frame: pd.DataFrame, utility_threshold: float) -> Section:
    def uniq(column: str) -> list[str]:
        return sorted({str(v) for v in frame[column].dropna()}) if column in frame else []

    scenarios = frame.drop_duplicates(["scenario_name", "scenario_hash"])
    shas = frame.drop_duplicates(["git_sha", "git_dirty"])
    ok = int((frame["status"] == "ok").sum())
    bullets = [
        "runs: " + ", ".join(f"`{r}`" for r in uniq("run_id")),
        "scenarios: " + ", ".join(f"`{s.scenario_name}` (sha256 `{str(s.scenario_hash)[:12]}`)"
                                  for s in scenarios.itertuples()),
        "code: " + ", ".join(f"git `{str(s.git_sha)[:12]}`" + (" (dirty)" if s.git_dirty
                                                                else "")
                             for s in shas.itertuples())
        + f"; extractbench {', '.join(uniq('extractbench_version'))}",
        f"generated: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"cells: {ok} ok, {len(frame) - ok} skipped or failed",
    ]
    text = (
        "Transfer = (student − base) / (teacher − base) on held-out items, unclipped (0 = no "
        "better than a student trained without teacher data, 1 = as good as the teacher); "
        "brackets are 95% bootstrap CIs. *Worst case* = max over attacks of the seed-mean "
        "transfer (attack in parentheses). *Resistance* = 1 − worst-case transfer at the "
        "largest budget. Profiles are ranked by resistance only when their utility is at least "
        f"{utility_threshold:.2f}, so a defense cannot climb the board by breaking the service "
        "for legitimate users. Rank `=k`: a tie (the CIs overlap). Hover a column header in "
        "the HTML report for its definition; docs/leaderboard.md defines every column."
    )
    return Section("", bullets=bullets, after=[text])


def _budget_labels(table: pd.DataFrame) -> list[str]:
    return [c[3:-len("_attack")] for c in table.columns
            if c.startswith("wc_") and c.endswith("_attack")]


def _q50(row: Any, name: str, fmt: Callable[[object], str]) -> Est:
    status = row.get("q50_status")
    value = row.get(name)
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    bounds = (fmt(low), fmt(high)) if not (_missing(low) or _missing(high)) else (None, None)
    if status == "not_reached":
        lower = "" if _missing(low) or math.isinf(float(low)) else f"CI lower bound {fmt(low)}"
        return Est("not reached within budget", note=lower)
    text = fmt(value)
    return Est(f"≤ {text}" if status == "at_first_budget" else text, *bounds)


def _flag_cell(row: Any) -> TableCell:
    frac = row.get("flagged_frac")
    if _missing(frac):
        return "–"
    if float(frac) == 0:
        return "never"
    cell = est(row, "flagged_at", lambda v: num(v, 0))
    note = "" if float(frac) >= 1 else f"in {pct(frac)} of seeds"
    return Est(cell.value, cell.low, cell.high, note)


def _profile_table(table: pd.DataFrame, keys: Sequence[str], legend: bool) -> Table:
    labels = _budget_labels(table)
    students = {v for lb in labels for v in table[f"wc_{lb}_student"]
                if isinstance(v, str) and v}
    has = {c: c in table and table[c].notna().any() for c in
           ("utility", "fpr", "flagged_frac", "watermark_z")}
    headers = ["rank", *keys]
    if not all(table["ranked"]):
        headers.append("why not ranked")
    headers += ["utility"] if has["utility"] else []
    priced = "q50_usd" in table and bool(
        (pd.to_numeric(table["q50_usd"], errors="coerce") > 0).any())
    headers += ["resistance", *(f"worst case @ {lb}" for lb in labels), "AUC",
                "queries to 50%", *(["$ to 50%"] if priced else [])]
    headers += ["flagged at"] if has["flagged_frac"] else []
    headers += ["FPR"] if has["fpr"] else []
    headers += ["watermark z"] if has["watermark_z"] else []
    headers.append("teacher")
    rows: list[list[TableCell]] = []
    for r in (dict(x) for _, x in table.iterrows()):
        cells: list[TableCell] = [str(r["rank_label"]) or "–", *(str(r[k]) for k in keys)]
        if "why not ranked" in headers:
            cells.append(str(r.get("unranked_reason") or ""))
        if has["utility"]:
            cells.append(est(r, "utility"))
        cells.append(est(r, "resistance"))
        for lb in labels:
            attack = r.get(f"wc_{lb}_attack")
            attack = attack if isinstance(attack, str) else ""
            if len(students) > 1 and attack:
                attack = f"{attack} · {r[f'wc_{lb}_student']}"
            cells.append(est(r, f"wc_{lb}", note=attack))
        cells += [est(r, "auc"), _q50(r, "q50_queries", lambda v: num(v, 0))]
        if priced:
            cells.append(_q50(r, "q50_usd", usd))
        if has["flagged_frac"]:
            cells.append(_flag_cell(r))
        if has["fpr"]:
            cells.append(est(r, "fpr", pct))
        if has["watermark_z"]:
            control = r.get("watermark_control_z")
            cells.append(est(r, "watermark_z", note=f"control {num(control)}"))
        cells.append(num(r.get("teacher_score")))
        rows.append(cells)
    definitions = {h: DEFINITIONS[h.split(" @ ")[0]] for h in headers
                   if h.split(" @ ")[0] in DEFINITIONS}
    return Table(headers, rows, definitions, legend=legend)



def _detection_table(frame: pd.DataFrame) -> Table | None:
    """Per (profile, attack) at that profile's largest budget: flags, transfer at the flag,
    watermark; plain means over seeds of the cells' own numbers."""
    ok = frame[frame["status"] == "ok"]
    wanted = [c for c in ("flagged_at", "watermark_z") if c in ok and ok[c].notna().any()]
    if ok.empty or not wanted:
        return None
    headers = ["profile", "attack", "budget", "transfer", "flagged", "flagged at",
               "transfer at flag", "watermark z", "control z"]
    rows: list[list[TableCell]] = []
    for (profile, attack), group in ok.groupby(["profile", "attack"], sort=False):
        x = pd.to_numeric(group["budget_queries"], errors="coerce").fillna(
            pd.to_numeric(group["queries"], errors="coerce"))
        top = group[x == x.max()]
        flags = pd.to_numeric(top.get("flagged_at"), errors="coerce") \
            if "flagged_at" in top else pd.Series(dtype=float)
        n_flag = int(flags.notna().sum())

        def mean(column: str, rows_: pd.DataFrame = top) -> float:
            if column not in rows_:
                return math.nan
            values = pd.to_numeric(rows_[column], errors="coerce").dropna()
            return float(values.mean()) if len(values) else math.nan

        taf = Est("–")
        if "transfer_at_flag" in top and not math.isnan(mean("transfer_at_flag")):
            taf = est({"v": mean("transfer_at_flag"), "v_low": mean("transfer_at_flag_low"),
                       "v_high": mean("transfer_at_flag_high")}, "v")
        rows.append([
            str(profile), str(attack), ", ".join(_unique(top["budget_label"])),
            Est(num(mean("transfer"))), f"{n_flag}/{len(top)} seeds",
            num(mean("flagged_at"), 0) if n_flag else "never", taf,
            num(mean("watermark_z")), num(mean("watermark_control_z")),
        ])
    return Table(headers, rows)


def _unique(values: Iterable[object]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values))


def _cells_table(frame: pd.DataFrame) -> Table:
    ok = frame[frame["status"] == "ok"].sort_values(
        ["profile", "task", "attack", "budget_queries", "budget_label", "student", "seed"],
        kind="stable")
    headers = ["profile", "task", "attack", "budget", "student", "seed", "teacher", "base",
               "student score", "transfer", "fidelity", "queries", "tokens", "cost $",
               "wall s"]
    rows: list[list[TableCell]] = [
        [str(r["profile"]), str(r["task"]), str(r["attack"]), str(r["budget_label"]),
         str(r["student"]), str(r["seed"]), num(r["teacher_score"]), num(r["base_score"]),
         num(r["student_score"]), est(r, "transfer"), num(r["fidelity"]), num(r["queries"]),
         num(r["tokens"]), usd(r["cost_usd"]), num(r["wall_s"], 1)]
        for r in (dict(x) for _, x in ok.iterrows())
    ]
    return Table(headers, rows)


def _failed(frame: pd.DataFrame) -> Section | None:
    bad = frame[frame["status"] != "ok"]
    if bad.empty:
        return None
    bullets = []
    for r in bad.itertuples():
        reason = str(r.error).splitlines()[0] if isinstance(r.error, str) and r.error \
            else "(no reason recorded)"
        bullets.append(f"`{r.cell_id}` — {r.status}: {reason}")
    return Section("Skipped and failed cells", ["Not counted in any number above."], bullets)


CAPTIONS = {
    "transfer_vs_budget": "Transfer vs budget (log scale), one panel per attack plus the worst "
                          "case; shaded bands are 95% bootstrap CIs. 0 = a student trained "
                          "without teacher data, 1 = the teacher.",
    "transfer_vs_cost": "Transfer vs dollars spent (or tokens when every cost is $0), one "
                        "panel per attack; bars are 95% CIs.",
    "resistance_vs_utility": "Resistance at the largest budget vs utility, with 95% CIs. "
                             "Filled markers are on the Pareto front (no other profile has both "
                             "higher utility and higher resistance); profiles left of the "
                             "dotted line are not ranked.",
    "detection_timeline": "Detection timeline: transfer vs attacker queries, one panel per "
                          "attack. A vertical line marks the query at which the defense first "
                          "flagged the attacker; a star marks the transfer of a student "
                          "trained only on what was harvested before the flag.",
}


def _figures(paths: Sequence[Path]) -> list[Figure]:
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


def report_sections(frame: pd.DataFrame, table: pd.DataFrame, task_table: pd.DataFrame | None,
                    figures: Sequence[Path], utility_threshold: float,
                    compared_tasks: Sequence[str] | None = None) -> list[Section]:
    """The leaderboard report: provenance, ranked and unranked profiles, per-task table,
    detection, plots, every cell, failed cells. ``compared_tasks``: the tasks the profile
    tables cover (when not all of the run's tasks)."""
    sections = [_header(frame, utility_threshold)]
    measured = "utility" in table and table["utility"].notna().any()
    ranked, unranked = table[table["ranked"]], table[~table["ranked"]]
    scope = []
    if compared_tasks is not None and set(compared_tasks) != set(frame["task"]):
        scope = [f"Profiles are compared on the task(s) every profile was measured on: "
                 f"{', '.join(compared_tasks)}. The other tasks are in *Profiles by task*."]
    if measured:
        title = f"Ranked profiles (utility ≥ {utility_threshold:.2f})"
        intro = list(scope)
    else:
        title = "Profiles"
        intro = ["Utility was not measured for any profile, so the ranking is by resistance "
                 "alone: a defense that wrecks the service for legitimate users could rank "
                 "first. Measure benign traffic to gate the ranking.", *scope]
    if not ranked.empty:
        sections.append(Section(title, intro, table=_profile_table(ranked, ["profile"], True)))
    if not unranked.empty:
        sections.append(Section(
            f"Not ranked: utility below {utility_threshold:.2f} or not measured",
            ["These profiles keep less than the threshold of the teacher's quality for "
             "legitimate users (or were not measured on benign traffic); their resistance is "
             "shown but not ranked."],
            table=_profile_table(unranked, ["profile"], ranked.empty)))
    if task_table is not None:
        sections.append(Section("Profiles by task", [
            "The same figures per task family; ranks are within each task's table."],
            table=_profile_table(task_table, ["profile", "task"], False)))
    detection = _detection_table(frame)
    if detection is not None:
        sections.append(Section("Detection and attribution", [
            "Per profile and attack at its largest budget (means over seeds). *Transfer at "
            "flag*: a student trained only on what was harvested before the first flag. The "
            "watermark z on the student's outputs is next to the z of a clean control "
            "student: only the difference is evidence."], table=detection))
    figs = _figures(figures)
    if figs:
        sections.append(Section("Plots", figures=figs))
    sections.append(Section("Cells", table=_cells_table(frame)))
    failed = _failed(frame)
    if failed is not None:
        sections.append(failed)
    return sections
