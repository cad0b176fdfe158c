"""Leaderboard plots: transfer vs budget and transfer vs dollars (one panel per attack plus the
worst case), resistance vs utility (:mod:`~extractbench.report.plot_utility`), the detection
timeline and the detector's calibration (:mod:`~extractbench.report.plot_detection`);
:func:`plot_report` draws them all from an :class:`~extractbench.report.analysis.Analysis`.

Transfer is the seed mean with its bootstrap CI; 0 is the student trained without teacher data,
1 is the teacher. The worst-case panel shows the analysis' worst case; nothing is recomputed
here. Styles: :mod:`~extractbench.report.plot_style`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from extractbench.report import columns as c
from extractbench.report.analysis import Analysis
from extractbench.report.curve import pareto_front
from extractbench.report.document import num
from extractbench.report.plot_detection import plot_detection_calibration, plot_detection_timeline
from extractbench.report.plot_style import (
    Style,
    curves_of,
    format_x,
    per_task,
    save,
    series_styles,
    set_style,
    style,
)
from extractbench.report.plot_utility import plot_resistance_vs_utility

__all__ = [
    "pareto_front",
    "plot_detection_calibration",
    "plot_detection_timeline",
    "plot_report",
    "plot_resistance_vs_utility",
    "plot_transfer_vs_budget",
    "plot_transfer_vs_cost",
    "set_style",
    "style",
]


def _draw_panel(ax: Axes, panel: pd.DataFrame, x: str, styles: dict[str, Style],
                band: bool, dodge: bool) -> None:
    """One panel: a line per series with its CI as a band or as error bars."""
    middle = (len(styles) - 1) / 2
    for name, series in panel.groupby(c.SERIES, sort=False):
        look = styles[str(name)]
        series = series.sort_values(x)
        xs = series[x].to_numpy(dtype=float)
        if dodge:  # spread overlapping error bars a little along a log x axis
            xs = xs * 1.02 ** (look.order - middle)
        ys = series[c.TRANSFER].to_numpy(dtype=float)
        lows = series[c.TRANSFER_LOW].to_numpy(dtype=float)
        highs = series[c.TRANSFER_HIGH].to_numpy(dtype=float)
        colour = look.colour
        ax.plot(xs, ys, color=colour, marker=look.marker, linestyle=look.linestyle,
                label=str(name), zorder=3)
        _mark_short(ax, series, xs, ys, colour, look.marker, label_spent=x == c.X_QUERIES)
        if band and len(xs) > 1:
            ax.fill_between(xs, lows, highs, color=colour, alpha=0.15, linewidth=0, zorder=2)
        else:
            below = np.where(np.isnan(lows), 0.0, ys - lows)
            above = np.where(np.isnan(highs), 0.0, highs - ys)
            ax.errorbar(xs, ys, yerr=np.vstack([below, above]), fmt="none", ecolor=colour,
                        elinewidth=1, capsize=2.5, zorder=2)
    for level in (0.0, 1.0):
        ax.axhline(level, color="#555555", linewidth=0.8, linestyle=(0, (4, 3)), zorder=1)


def _short(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose campaign (in some seed) could not spend its budget."""
    if c.BUDGET_SHORT not in frame:
        return np.zeros(len(frame), dtype=bool)
    return np.asarray(pd.to_numeric(frame[c.BUDGET_SHORT], errors="coerce").fillna(0) > 0)


def _mark_short(ax: Axes, series: pd.DataFrame, xs: np.ndarray, ys: np.ndarray, colour: str,
                marker: str, label_spent: bool) -> None:
    """A budget that could not be spent is drawn hollow at what was spent, labelled ``600 of
    1,000`` on a queries axis."""
    short = _short(series)
    if not short.any():
        return
    ax.plot(xs[short], ys[short], linestyle="none", marker=marker, markersize=7.5,
            markerfacecolor="white", markeredgecolor=colour, markeredgewidth=1.4, zorder=4)
    if not label_spent:
        return
    limits = pd.to_numeric(series[c.BUDGET_QUERIES], errors="coerce").to_numpy(dtype=float) \
        if c.BUDGET_QUERIES in series else np.full(len(series), np.nan)
    for x, y, limit in zip(xs[short], ys[short], limits[short], strict=True):
        text = f"{num(x, 0)} of {num(limit, 0)}" if np.isfinite(limit) else "short"
        ax.annotate(text, (x, y), xytext=(5, -9), textcoords="offset points", fontsize=6.5,
                    color=colour, zorder=5)


def _figure(curves: pd.DataFrame, worst: pd.DataFrame, x: str, xlabel: str, title: str,
            band: bool, log: bool, money: bool, path: Path, order: Sequence[str] | None,
            measured_ticks: bool) -> list[Path]:
    """A figure of panels (worst case, then one per attack) sharing the y axis."""
    attacks = sorted(curves[c.ATTACK].astype(str).unique())
    panels: list[tuple[str, pd.DataFrame]] = []
    if len(attacks) > 1:
        panels.append(("worst case (max over attacks)", worst))
    panels += [(f"attack: {a}", curves[curves[c.ATTACK].astype(str) == a]) for a in attacks]
    styles = series_styles(curves, order)
    ncols = len(panels) if len(panels) <= 3 else 2 if len(panels) == 4 else 3
    nrows = math.ceil(len(panels) / ncols)
    legend_cols = min(len(styles), 4 if ncols > 1 else 2)
    legend_rows = math.ceil(len(styles) / legend_cols)
    with style():
        fig = Figure(figsize=(3.6 * ncols + 0.6, 2.9 * nrows + 0.7 + 0.2 * legend_rows),
                     layout="constrained")
        axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
        values = curves[[c.TRANSFER, c.TRANSFER_LOW, c.TRANSFER_HIGH]].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        low = min(-0.1, float(finite.min()) - 0.05) if finite.size else -0.1
        high = max(1.1, float(finite.max()) + 0.05) if finite.size else 1.1
        for ax, (panel_title, panel) in zip(axes, panels, strict=False):
            _draw_panel(ax, panel, x, styles, band, dodge=not band and log)
            format_x(ax, curves[x].to_numpy(dtype=float), log, money, measured_ticks)
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
        what = "profile · student" if curves[c.STUDENT].nunique() > 1 else "profile"
        hollow = "; hollow: budget not fully spent" if _short(curves).any() else ""
        fig.legend(handles, labels, loc="outside lower center", ncols=legend_cols,
                   title=f"{what} ({'shaded' if band else 'bars'}: 95% CI{hollow})")
        fig.suptitle(title)
        return save(fig, path)


def plot_transfer_vs_budget(frame: pd.DataFrame, path_stem: Path,
                            order: Sequence[str] | None = None,
                            worst: pd.DataFrame | None = None) -> list[Path]:
    """Seed-mean transfer (CI band) vs the queries actually spent (log x), one panel per attack
    plus a worst-case panel when there are several, one line per profile, one figure per task.

    Every budget sits at what its campaign spent (seed mean), whatever its limit; a budget
    that could not be spent (attack pool exhausted, keys refused) is drawn hollow and, for a
    query budget, labelled ``600 of 1,000``. ``frame`` is a cells frame
    (:func:`~extractbench.report.frames.records_frame`) or its
    :func:`~extractbench.report.frames.seed_means`. Writes ``<path_stem>.png`` and ``.svg``
    (``<path_stem>-<task>`` with several tasks) and returns the paths. ``order`` fixes each
    profile's style (default: order of appearance). ``worst``: the analysis' worst case per
    series (:func:`~extractbench.report.worst.worst_by_series`), computed from ``frame`` when
    not given.
    """
    written: list[Path] = []
    for task, curves, task_worst, stem in per_task(curves_of(frame), Path(path_stem),
                                                   worst):
        written += _figure(curves, task_worst, c.X_QUERIES, "queries spent (log scale)",
                           f"Transfer vs queries spent — task: {task}",
                           band=True, log=True, money=False, path=stem, order=order,
                           measured_ticks=True)
    return written


def plot_transfer_vs_cost(frame: pd.DataFrame, path_stem: Path,
                          order: Sequence[str] | None = None,
                          worst: pd.DataFrame | None = None) -> list[Path]:
    """Seed-mean transfer (CI bars) vs dollars actually spent, or vs tokens spent when every
    cost is $0 (the axis label says so); one panel per attack (plus the worst case), one
    figure per task; arguments as for :func:`plot_transfer_vs_budget`."""
    written: list[Path] = []
    for task, curves, task_worst, stem in per_task(curves_of(frame), Path(path_stem),
                                                   worst):
        costs = pd.to_numeric(curves[c.COST_USD], errors="coerce").fillna(0.0)
        if (costs > 0).any():
            x, xlabel, money = c.COST_USD, "cost spent (USD", True
        else:
            x, xlabel, money = c.TOKENS, "tokens spent, input + output (all costs $0", False
        positive = bool((pd.to_numeric(curves[x], errors="coerce") > 0).all())
        xlabel += ", log scale)" if positive else ")"
        what = "dollars" if money else "tokens"
        written += _figure(curves, task_worst, x, xlabel,
                           f"Transfer vs {what} spent — task: {task}",
                           band=False, log=positive, money=money, path=stem, order=order,
                           measured_ticks=False)
    return written


def plot_report(analysis: Analysis, out_dir: Path) -> list[Path]:
    """Every figure of the report into ``out_dir``; each profile keeps its style throughout."""
    order = analysis.profile_order
    out_dir = Path(out_dir)
    figures = plot_transfer_vs_budget(analysis.curves, out_dir / "transfer_vs_budget", order,
                                      worst=analysis.series_worst)
    figures += plot_transfer_vs_cost(analysis.curves, out_dir / "transfer_vs_cost", order,
                                     worst=analysis.series_worst)
    figures += plot_resistance_vs_utility(analysis.table, out_dir / "resistance_vs_utility",
                                          analysis.utility_threshold, order)
    figures += plot_detection_timeline(analysis.curves, out_dir / "detection_timeline", order)
    figures += plot_detection_calibration(analysis.cells, out_dir / "detection_calibration",
                                          order)
    return figures
