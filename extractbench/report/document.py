"""The report as a small document model: :class:`Section` s of paragraphs, bullet lists, a
:class:`Table` whose cells are plain text or an :class:`Est` (a figure with its confidence
interval), and :class:`Figure` s (PNG/SVG files); plus the number formats of its cells.

:func:`~extractbench.report.markdown.render_markdown` and
:func:`~extractbench.report.html_page.render_html` render it; text in paragraphs may use
``code`` spans and *emphasis*; everything else is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Est", "Figure", "Section", "Table", "TableCell", "est", "legend_items", "missing",
           "num", "pct", "sim_time", "usd"]


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
    """A titled part of the report: paragraphs, bullets, a table, figures, then more
    paragraphs."""

    title: str
    paragraphs: Sequence[str] = ()
    bullets: Sequence[str] = ()
    table: Table | None = None
    figures: Sequence[Figure] = ()
    after: Sequence[str] = ()
    """Paragraphs shown after the table."""


def legend_items(table: Table) -> list[tuple[str, str]]:
    """(header, definition) for the headers shown; columns that share a definition (one per
    budget: ``worst case @ q30``, ...) are listed once as ``worst case @ budget``."""
    seen: dict[str, str] = {}
    for header in table.headers:
        text = table.definitions.get(header)
        if text is not None:
            seen.setdefault(text, header.split(" @ ")[0] + (" @ budget" if " @ " in header
                                                            else ""))
    return [(header, text) for text, header in seen.items()]


def missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def num(value: object, digits: int = 2) -> str:
    """A number for a table: a dash when missing, thousands separators for large integers."""
    if missing(value):
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
    """Dollars with 3 significant digits (a dash when missing)."""
    text = num(value)
    if text in ("–", "not reached"):
        return text
    return f"${float(value):.3g}"  # type: ignore[arg-type]


def pct(value: object) -> str:
    """A share as a percentage with one decimal (a dash when missing)."""
    return "–" if missing(value) else f"{100 * float(value):.1f}%"  # type: ignore[arg-type]


def sim_time(seconds: object) -> str:
    """A simulated duration (a campaign's length, the time to a flag) in the unit that reads
    best (``31 s``, ``12 min``, ``4.2 h``, ``3.0 d``); a dash on the wall clock (or when the
    record does not say)."""
    if missing(seconds):
        return "–"
    s = float(seconds)  # type: ignore[arg-type]
    if s < 120:
        return f"{s:.0f} s"
    if s < 2 * 3600:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def est(row: Any, name: str, fmt: Callable[[object], str] = num, note: str = "") -> Est:
    """``row[name]`` with ``row[name_low]``/``row[name_high]`` as an :class:`Est`."""
    value = row.get(name)
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    if missing(value):
        return Est("–")
    if missing(low) or missing(high):
        return Est(fmt(value), note=note)
    return Est(fmt(value), fmt(low), fmt(high), note=note)
