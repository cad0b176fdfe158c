"""The report rendered as GitHub-flavoured Markdown, figures linked by file name."""

from __future__ import annotations

from collections.abc import Sequence

from extractbench.report.document import Est, Section, Table, TableCell, legend_items

__all__ = ["render_markdown"]


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
        out += [f"- **{h}**: {d}" for h, d in legend_items(table)]
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
