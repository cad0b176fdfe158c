"""The report rendered as one self-contained static HTML page: every figure embedded (SVG
when there is one, else PNG) as a base64 ``data:`` URI and the CSS inlined, so the page has no
external assets and can be mailed or published as one file."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

from extractbench.report.document import Est, Figure, Section, Table, TableCell, legend_items

__all__ = ["render_html"]

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
                for h, d in legend_items(table)]
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
