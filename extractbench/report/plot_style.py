"""The look of the report's plots: one style for every figure, and one colour, marker and line
style per profile, the same in every figure of a report (pass the same ``order``), so the
plots stay readable in greyscale; plus the axis formats and the file writing shared by the
figures. Figures are drawn off-screen (matplotlib's ``Figure`` with the Agg canvas, no pyplot)
and saved as PNG (150 dpi) and SVG.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from extractbench.report import columns as c
from extractbench.report.frames import seed_means
from extractbench.report.worst import worst_by_series

__all__ = ["DPI", "Style", "curves_of", "format_x", "per_task", "profile_index", "profile_style",
           "save", "series_label", "series_styles", "set_style", "slug", "style"]

DPI = 150

# Okabe-Ito: colour-blind safe, and with markers + line styles, greyscale-safe.
COLOURS = ("#000000", "#E69F00", "#0072B2", "#009E73", "#D55E00", "#CC79A7", "#56B4E9",
           "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")

_RC: dict[Any, Any] = {  # Any keys: matplotlib types them as a Literal
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 5.5,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "svg.fonttype": "none",
    "svg.hashsalt": "extractbench",
}


def set_style() -> None:
    """Apply the extractbench plot style to matplotlib's global rcParams."""
    mpl.rcParams.update(_RC)


@contextmanager
def style() -> Iterator[None]:
    """The extractbench plot style for the duration of a ``with`` block."""
    with mpl.rc_context(_RC):
        yield


def slug(text: str) -> str:
    """``text`` as a file-name part."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "task"


def series_label(frame: pd.DataFrame, several_students: bool) -> pd.Series:
    """Each row's line label: the profile, or ``profile · student`` with several students."""
    if several_students:
        return frame[c.PROFILE].astype(str) + " · " + frame[c.STUDENT].astype(str)
    return frame[c.PROFILE].astype(str)


class Style(NamedTuple):
    """How one series is drawn."""

    order: int  # position in the legend
    colour: str  # the profile's colour
    marker: str  # the profile's marker
    linestyle: str  # the profile's (or with several students, the student's) line style


def profile_index(profiles: Sequence[str], order: Sequence[str] | None) -> dict[str, int]:
    """Each profile's style index: its position in ``order`` (profiles missing from it follow,
    in order of appearance)."""
    names = list(dict.fromkeys([*(order or []), *profiles]))
    return {name: i for i, name in enumerate(names)}


def profile_style(k: int, line: int | None = None) -> tuple[str, str, str]:
    """(colour, marker, line style) of style index ``k``; profiles 8 apart share colour and
    marker but not line style."""
    line = k + k // len(COLOURS) if line is None else line
    return COLOURS[k % len(COLOURS)], MARKERS[k % len(MARKERS)], LINESTYLES[line % len(LINESTYLES)]


def series_styles(curves: pd.DataFrame, order: Sequence[str] | None = None) -> dict[str, Style]:
    """A distinct (colour, marker, line style) per series. The profile picks colour and
    marker (by its position in ``order``); with several student recipes the student picks
    the line style."""
    rows = curves.drop_duplicates(c.SERIES)
    index = profile_index(list(rows[c.PROFILE].astype(str)), order)
    students = list(dict.fromkeys(rows[c.STUDENT].astype(str)))
    styles: dict[str, Style] = {}
    ranked = sorted(rows.itertuples(), key=lambda r: (index[str(r.profile)],
                                                     students.index(str(r.student))))
    for i, r in enumerate(ranked):
        k = index[str(r.profile)]
        line = students.index(str(r.student)) if len(students) > 1 else None
        colour, marker, linestyle = profile_style(k, line)
        styles[str(r.series)] = Style(i, colour, marker, linestyle)
    return styles


def _short_number(value: float, _pos: object = None) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def _money(value: float, _pos: object = None) -> str:
    return f"${value:.3g}"


def thin(ticks: np.ndarray, min_ratio: float = 1.6) -> np.ndarray:
    """Measured values to label on a log axis: at most 6, none closer than ``min_ratio``."""
    if len(ticks) > 8:
        ticks = ticks[np.unique(np.linspace(0, len(ticks) - 1, 6).round().astype(int))]
    kept = [ticks[0]] if len(ticks) else []
    for tick in ticks[1:]:
        if tick / kept[-1] >= min_ratio:
            kept.append(tick)
    return np.asarray(kept, dtype=float)


def format_x(ax: Axes, xs: np.ndarray, log: bool, money: bool, measured: bool = True) -> None:
    """Log axes label the measured values (budgets) when ``measured``, else 1-2-5 steps
    (amounts spent, which fall anywhere)."""
    formatter = FuncFormatter(_money if money else _short_number)
    finite = xs[np.isfinite(xs) & (xs > 0)]
    if log:
        ax.set_xscale("log")
        ticks = thin(np.unique(finite)) if measured else np.array([])
        if len(ticks):  # label measured values, not powers of ten the data never reached
            ax.set_xticks(ticks)
        else:  # 1-2-5 steps over a short range, fewer over a long one, so labels never touch
            decades = math.log10(finite.max() / finite.min()) if len(finite) else 3.0
            subs = (1.0, 2.0, 5.0) if decades < 1 else (1.0, 3.0) if decades < 1.6 else (1.0,)
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_formatter(formatter)
        if len(finite):
            ax.set_xlim(finite.min() / 1.4, finite.max() * 1.4)
    else:
        ax.xaxis.set_major_formatter(formatter)


def save(fig: Figure, path: Path) -> list[Path]:
    """Write ``<path>.png`` and ``<path>.svg`` (no date in the SVG); return both paths."""
    paths = [path.with_name(path.name + ".png"), path.with_name(path.name + ".svg")]
    path.parent.mkdir(parents=True, exist_ok=True)
    for out in paths:
        fig.savefig(out, dpi=DPI, metadata={"Date": None} if out.suffix == ".svg" else {})
    return paths


def curves_of(frame: pd.DataFrame) -> pd.DataFrame:
    """Seed means from a cells frame, or the frame itself when it already is one."""
    return frame if c.N_SEEDS in frame else seed_means(frame)


def per_task(curves: pd.DataFrame, path_stem: Path, worst: pd.DataFrame | None = None
             ) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame, Path]]:
    """``(task, its curves, its worst case, file stem)`` per task, the curves and the worst
    case (:func:`~extractbench.report.worst.worst_by_series` of the curves, or ``worst``)
    labelled by series; the stem gets a ``-<task>`` suffix when there are several tasks."""
    if curves.empty:
        return
    if worst is None:
        worst = worst_by_series(curves)
    several = curves[c.STUDENT].nunique() > 1
    curves = curves.assign(**{c.SERIES: series_label(curves, several)})
    worst = worst.assign(**{c.SERIES: series_label(worst, several)}) if not worst.empty \
        else curves.iloc[0:0]
    tasks = list(dict.fromkeys(curves[c.TASK].astype(str)))
    for task in tasks:
        stem = path_stem if len(tasks) == 1 else path_stem.with_name(
            f"{path_stem.name}-{slug(task)}")
        yield (task, curves[curves[c.TASK].astype(str) == task],
               worst[worst[c.TASK].astype(str) == task], stem)
