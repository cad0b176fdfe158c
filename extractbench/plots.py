"""Leaderboard plots: transfer vs budget and transfer vs cost, one figure per task.

Figures are drawn off-screen (matplotlib's ``Figure`` with the Agg canvas, no pyplot, no
display) and saved as PNG (150 dpi) and SVG. Every series gets its own colour, marker and line
style, so the plots stay readable in greyscale. Transfer is the seed mean with its bootstrap
CI; 0 is the student trained without teacher data, 1 is the teacher.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from extractbench.results import seed_means

__all__ = ["plot_transfer_vs_budget", "plot_transfer_vs_cost", "set_style", "style"]

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


def _curves(frame: pd.DataFrame) -> pd.DataFrame:
    """Seed means from a cells frame, or the frame itself when it already is one."""
    return frame if "n_seeds" in frame else seed_means(frame)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "task"


def _series_label(frame: pd.DataFrame) -> pd.Series:
    if frame["student"].nunique() > 1:
        return frame["profile"].astype(str) + " · " + frame["student"].astype(str)
    return frame["profile"].astype(str)


class _Style(NamedTuple):
    order: int
    colour: str
    marker: str
    linestyle: str


def _series_styles(curves: pd.DataFrame) -> dict[str, _Style]:
    """A distinct (colour, marker, line style) per series. With several student recipes the
    profile picks colour and marker and the student picks the line style."""
    rows = curves.drop_duplicates("series")
    profiles = list(dict.fromkeys(rows["profile"].astype(str)))
    students = list(dict.fromkeys(rows["student"].astype(str)))
    styles: dict[str, _Style] = {}
    for i, r in enumerate(rows.sort_values("profile", key=lambda c: c.map(profiles.index),
                                           kind="stable").itertuples()):
        if len(students) > 1:
            k, line = profiles.index(str(r.profile)), students.index(str(r.student))
        else:  # i and i + 8 share colour and marker but not line style
            k, line = i, i + i // len(COLOURS)
        styles[str(r.series)] = _Style(i, COLOURS[k % len(COLOURS)], MARKERS[k % len(MARKERS)],
                                       LINESTYLES[line % len(LINESTYLES)])
    return styles


def _short_number(value: float, _pos: object = None) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def _money(value: float, _pos: object = None) -> str:
    return f"${value:.3g}"


def _worst_case_rows(task_curves: pd.DataFrame) -> pd.DataFrame:
    defined = task_curves.dropna(subset=["transfer"])
    if defined.empty:
        return defined
    best = defined.groupby(["series", "budget_label"], sort=False)["transfer"].idxmax()
    return defined.loc[best.to_numpy()]


def _draw_panel(ax: Axes, panel: pd.DataFrame, x: str, styles: dict[str, _Style],
                band: bool, dodge: bool) -> None:
    middle = (len(styles) - 1) / 2
    for name, series in panel.groupby("series", sort=False):
        look = styles[str(name)]
        series = series.sort_values(x)
        xs = series[x].to_numpy(dtype=float)
        if dodge:  # spread overlapping error bars a little along a log x axis
            xs = xs * 1.02 ** (look.order - middle)
        ys = series["transfer"].to_numpy(dtype=float)
        lows = series["transfer_low"].to_numpy(dtype=float)
        highs = series["transfer_high"].to_numpy(dtype=float)
        colour = look.colour
        ax.plot(xs, ys, color=colour, marker=look.marker, linestyle=look.linestyle,
                label=str(name), zorder=3)
        if band and len(xs) > 1:
            ax.fill_between(xs, lows, highs, color=colour, alpha=0.15, linewidth=0, zorder=2)
        else:
            below = np.where(np.isnan(lows), 0.0, ys - lows)
            above = np.where(np.isnan(highs), 0.0, highs - ys)
            ax.errorbar(xs, ys, yerr=np.vstack([below, above]), fmt="none", ecolor=colour,
                        elinewidth=1, capsize=2.5, zorder=2)
    for level in (0.0, 1.0):
        ax.axhline(level, color="#555555", linewidth=0.8, linestyle=(0, (4, 3)), zorder=1)


def _format_x(ax: Axes, xs: np.ndarray, log: bool, money: bool) -> None:
    formatter = FuncFormatter(_money if money else _short_number)
    if log:
        ax.set_xscale("log")
        ticks = np.unique(xs[np.isfinite(xs) & (xs > 0)])
        if len(ticks) > 8:  # label at most 6 of the measured values, spread out
            ticks = ticks[np.unique(np.linspace(0, len(ticks) - 1, 6).round().astype(int))]
        if len(ticks):  # label measured values, not powers of ten the data never reached
            ax.set_xticks(ticks)
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_formatter(formatter)
        if len(ticks):
            ax.set_xlim(ticks[0] / 1.4, ticks[-1] * 1.4)
    else:
        ax.xaxis.set_major_formatter(formatter)


def _figure(curves: pd.DataFrame, x: str, xlabel: str, title: str, band: bool,
            log: bool, money: bool, path: Path) -> list[Path]:
    attacks = sorted(curves["attack"].astype(str).unique())
    panels: list[tuple[str, pd.DataFrame]] = []
    if len(attacks) > 1:
        panels.append(("worst case (max over attacks)", _worst_case_rows(curves)))
    panels += [(f"attack: {a}", curves[curves["attack"].astype(str) == a]) for a in attacks]
    styles = _series_styles(curves)
    ncols = len(panels) if len(panels) <= 3 else 2 if len(panels) == 4 else 3
    nrows = math.ceil(len(panels) / ncols)
    legend_cols = min(len(styles), 4 if ncols > 1 else 2)
    legend_rows = math.ceil(len(styles) / legend_cols)
    with style():
        fig = Figure(figsize=(3.6 * ncols + 0.6, 2.9 * nrows + 0.7 + 0.2 * legend_rows),
                     layout="constrained")
        axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
        values = curves[["transfer", "transfer_low", "transfer_high"]].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        low = min(-0.1, float(finite.min()) - 0.05) if finite.size else -0.1
        high = max(1.1, float(finite.max()) + 0.05) if finite.size else 1.1
        for ax, (panel_title, panel) in zip(axes, panels, strict=False):
            _draw_panel(ax, panel, x, styles, band, dodge=not band and log)
            _format_x(ax, curves[x].to_numpy(dtype=float), log, money)
            ax.set_title(panel_title)
            ax.set_ylim(low, high)
            ax.set_xlabel(xlabel)
        for ax in axes[len(panels):]:
            ax.remove()
        for ax in axes[::ncols]:
            ax.set_ylabel("transfer (0 = base, 1 = teacher)")
        legend: dict[str, Artist] = {}
        for ax in axes[: len(panels)]:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                legend.setdefault(label, handle)
        labels = sorted(legend, key=lambda label: styles[label].order)
        handles = [legend[label] for label in labels]
        what = "profile · student" if curves["student"].nunique() > 1 else "profile"
        fig.legend(handles, labels, loc="outside lower center", ncols=legend_cols,
                   title=f"{what} (shaded: 95% CI)" if band else f"{what} (bars: 95% CI)")
        fig.suptitle(title)
        paths = [path.with_name(path.name + ".png"), path.with_name(path.name + ".svg")]
        path.parent.mkdir(parents=True, exist_ok=True)
        for out in paths:
            fig.savefig(out, dpi=DPI, metadata={"Date": None} if out.suffix == ".svg" else {})
    return paths


def _per_task(frame: pd.DataFrame, path_stem: Path) -> Iterator[tuple[str, pd.DataFrame, Path]]:
    curves = _curves(frame)
    if curves.empty:
        return
    curves = curves.assign(series=_series_label(curves))
    tasks = list(dict.fromkeys(curves["task"].astype(str)))
    for task in tasks:
        stem = path_stem if len(tasks) == 1 else path_stem.with_name(
            f"{path_stem.name}-{_slug(task)}")
        yield task, curves[curves["task"].astype(str) == task], stem


def plot_transfer_vs_budget(frame: pd.DataFrame, path_stem: Path) -> list[Path]:
    """Seed-mean transfer (CI band) vs budget in queries (log x), one panel per attack plus a
    worst-case panel when there are several, one line per profile, one figure per task.

    ``frame`` is a cells frame (:func:`~extractbench.results.records_frame`) or its
    :func:`~extractbench.results.seed_means`. Budgets in tokens or dollars are placed at the
    queries actually spent. Writes ``<path_stem>.png`` and ``.svg`` (``<path_stem>-<task>``
    with several tasks) and returns the paths.
    """
    written: list[Path] = []
    for task, curves, stem in _per_task(frame, Path(path_stem)):
        limited = curves["budget_queries"].notna() if "budget_queries" in curves else None
        if limited is not None and limited.all():
            xlabel = "budget (queries, log scale)"
        elif limited is not None and limited.any():
            xlabel = "queries: budget, or spent if budget is tokens/$ (log)"
        else:
            xlabel = "queries spent (log scale)"
        written += _figure(curves, "x_queries", xlabel, f"Transfer vs budget — task: {task}",
                           band=True, log=True, money=False, path=stem)
    return written


def plot_transfer_vs_cost(frame: pd.DataFrame, path_stem: Path) -> list[Path]:
    """Seed-mean transfer (CI bars) vs dollars actually spent, or vs tokens spent when every
    cost is $0 (the axis label says so); one panel per attack, one figure per task."""
    written: list[Path] = []
    for task, curves, stem in _per_task(frame, Path(path_stem)):
        costs = pd.to_numeric(curves["cost_usd"], errors="coerce").fillna(0.0)
        if (costs > 0).any():
            x, xlabel, money = "cost_usd", "cost spent (USD", True
        else:
            x, xlabel, money = "tokens", "tokens spent, input + output (all costs $0", False
        positive = bool((pd.to_numeric(curves[x], errors="coerce") > 0).all())
        xlabel += ", log scale)" if positive else ")"
        written += _figure(curves, x, xlabel, f"Transfer vs cost — task: {task}", band=False,
                           log=positive, money=money, path=stem)
    return written
