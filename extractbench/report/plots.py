"""Leaderboard plots: transfer vs budget, transfer vs dollars, resistance vs utility (with the
Pareto front), and the detection timeline.

Figures are drawn off-screen (matplotlib's ``Figure`` with the Agg canvas, no pyplot, no
display) and saved as PNG (150 dpi) and SVG. Every profile gets its own colour, marker and line
style, the same in every figure of a report (pass the same ``order``), so the plots stay
readable in greyscale. Transfer is the seed mean with its bootstrap CI; 0 is the student
trained without teacher data, 1 is the teacher.
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
import numpy.typing as npt
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import Bbox

from extractbench.report.frames import seed_means

__all__ = [
    "pareto_front",
    "plot_detection_timeline",
    "plot_resistance_vs_utility",
    "plot_transfer_vs_budget",
    "plot_transfer_vs_cost",
    "set_style",
    "style",
]

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


def _profile_index(profiles: Sequence[str], order: Sequence[str] | None) -> dict[str, int]:
    """Each profile's style index: its position in ``order`` (profiles missing from it follow,
    in order of appearance)."""
    names = list(dict.fromkeys([*(order or []), *profiles]))
    return {name: i for i, name in enumerate(names)}


def _profile_style(k: int, line: int | None = None) -> tuple[str, str, str]:
    """(colour, marker, line style) of style index ``k``; profiles 8 apart share colour and
    marker but not line style."""
    line = k + k // len(COLOURS) if line is None else line
    return COLOURS[k % len(COLOURS)], MARKERS[k % len(MARKERS)], LINESTYLES[line % len(LINESTYLES)]


def _series_styles(curves: pd.DataFrame, order: Sequence[str] | None = None) -> dict[str, _Style]:
    """A distinct (colour, marker, line style) per series. The profile picks colour and
    marker (by its position in ``order``); with several student recipes the student picks
    the line style."""
    rows = curves.drop_duplicates("series")
    index = _profile_index(list(rows["profile"].astype(str)), order)
    students = list(dict.fromkeys(rows["student"].astype(str)))
    styles: dict[str, _Style] = {}
    ranked = sorted(rows.itertuples(), key=lambda r: (index[str(r.profile)],
                                                     students.index(str(r.student))))
    for i, r in enumerate(ranked):
        k = index[str(r.profile)]
        line = students.index(str(r.student)) if len(students) > 1 else None
        colour, marker, linestyle = _profile_style(k, line)
        styles[str(r.series)] = _Style(i, colour, marker, linestyle)
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


def _thin(ticks: np.ndarray, min_ratio: float = 1.6) -> np.ndarray:
    """Measured values to label on a log axis: at most 6, none closer than ``min_ratio``."""
    if len(ticks) > 8:
        ticks = ticks[np.unique(np.linspace(0, len(ticks) - 1, 6).round().astype(int))]
    kept = [ticks[0]] if len(ticks) else []
    for tick in ticks[1:]:
        if tick / kept[-1] >= min_ratio:
            kept.append(tick)
    return np.asarray(kept, dtype=float)


def _format_x(ax: Axes, xs: np.ndarray, log: bool, money: bool, measured: bool = True) -> None:
    """Log axes label the measured values (budgets) when ``measured``, else 1-2-5 steps
    (amounts spent, which fall anywhere)."""
    formatter = FuncFormatter(_money if money else _short_number)
    finite = xs[np.isfinite(xs) & (xs > 0)]
    if log:
        ax.set_xscale("log")
        ticks = _thin(np.unique(finite)) if measured else np.array([])
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


def _save(fig: Figure, path: Path) -> list[Path]:
    paths = [path.with_name(path.name + ".png"), path.with_name(path.name + ".svg")]
    path.parent.mkdir(parents=True, exist_ok=True)
    for out in paths:
        fig.savefig(out, dpi=DPI, metadata={"Date": None} if out.suffix == ".svg" else {})
    return paths


def _figure(curves: pd.DataFrame, x: str, xlabel: str, title: str, band: bool,
            log: bool, money: bool, path: Path, order: Sequence[str] | None,
            measured_ticks: bool) -> list[Path]:
    attacks = sorted(curves["attack"].astype(str).unique())
    panels: list[tuple[str, pd.DataFrame]] = []
    if len(attacks) > 1:
        panels.append(("worst case (max over attacks)", _worst_case_rows(curves)))
    panels += [(f"attack: {a}", curves[curves["attack"].astype(str) == a]) for a in attacks]
    styles = _series_styles(curves, order)
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
            _format_x(ax, curves[x].to_numpy(dtype=float), log, money, measured_ticks)
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
        return _save(fig, path)


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


def plot_transfer_vs_budget(frame: pd.DataFrame, path_stem: Path,
                            order: Sequence[str] | None = None) -> list[Path]:
    """Seed-mean transfer (CI band) vs budget in queries (log x), one panel per attack plus a
    worst-case panel when there are several, one line per profile, one figure per task.

    ``frame`` is a cells frame (:func:`~extractbench.report.frames.records_frame`) or its
    :func:`~extractbench.report.frames.seed_means`. Budgets in tokens or dollars are placed at the
    queries actually spent. Writes ``<path_stem>.png`` and ``.svg`` (``<path_stem>-<task>``
    with several tasks) and returns the paths. ``order`` fixes each profile's style (default:
    order of appearance).
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
                           band=True, log=True, money=False, path=stem, order=order,
                           measured_ticks=True)
    return written


def plot_transfer_vs_cost(frame: pd.DataFrame, path_stem: Path,
                          order: Sequence[str] | None = None) -> list[Path]:
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
        what = "dollars" if money else "tokens"
        written += _figure(curves, x, xlabel, f"Transfer vs {what} spent — task: {task}",
                           band=False, log=positive, money=money, path=stem, order=order,
                           measured_ticks=False)
    return written


# ------------------------------------------------------------------ resistance vs utility


def pareto_front(utility: npt.ArrayLike, resistance: npt.ArrayLike) -> list[bool]:
    """Which points no other point dominates (at least as high on both axes and higher on
    one); points with a missing coordinate are never on the front."""
    u = np.asarray(utility, dtype=float)
    r = np.asarray(resistance, dtype=float)
    ok = np.isfinite(u) & np.isfinite(r)
    out = []
    for i in range(len(u)):
        if not ok[i]:
            out.append(False)
            continue
        dominated = ok & (u >= u[i]) & (r >= r[i]) & ((u > u[i]) | (r > r[i]))
        out.append(not bool(dominated.any()))
    return out


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    if name not in table:
        return np.full(len(table), np.nan)
    return pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)


def _yerr(values: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    below = np.where(np.isnan(lows), 0.0, values - lows)
    above = np.where(np.isnan(highs), 0.0, highs - values)
    return np.vstack([np.maximum(below, 0.0), np.maximum(above, 0.0)])


def plot_resistance_vs_utility(table: pd.DataFrame, path_stem: Path,
                               utility_threshold: float = 0.9,
                               order: Sequence[str] | None = None) -> list[Path]:
    """Resistance at the largest budget vs utility, one point per profile with 95% CI bars in
    both directions, the Pareto front filled and joined by a dashed staircase, dominated
    profiles hollow, and the ranking threshold as a dotted vertical line.

    ``table`` is a :func:`~extractbench.report.leaderboard.leaderboard_frame` (one row per profile).
    Profiles without a utility cannot be placed and are named in a note under the axes;
    returns ``[]`` (no figure) when no profile has one.
    """
    u = _column(table, "utility")
    r = _column(table, "resistance")
    placed = np.isfinite(u) & np.isfinite(r)
    if not placed.any():
        return []
    profiles = [str(p) for p in table["profile"]]
    index = _profile_index(profiles, order)
    front = pareto_front(u, r)
    u_lo, u_hi = _column(table, "utility_low"), _column(table, "utility_high")
    r_lo, r_hi = _column(table, "resistance_low"), _column(table, "resistance_high")
    with style():
        fig = Figure(figsize=(6.4, 5.0), layout="constrained")
        ax = fig.subplots()
        x_low = np.nanmin(np.concatenate([u[placed], u_lo[placed], [utility_threshold]]))
        x_high = np.nanmax(np.concatenate([u[placed], u_hi[placed], [1.0]]))
        pad = max(0.02, 0.06 * (x_high - x_low))
        left, right = x_low - pad, x_high + pad
        ax.axvspan(left, utility_threshold, color="#eeeeee", zorder=0, linewidth=0)
        ax.axvline(utility_threshold, color="#444444", linestyle=":", linewidth=1.2, zorder=1)
        ax.text(utility_threshold, 1.0, f" ranking threshold\n utility ≥ {utility_threshold:g}",
                transform=ax.get_xaxis_transform(), va="top", ha="left", fontsize=7.5,
                color="#333333")
        ax.text(left + 0.01 * (right - left), 0.02, "not ranked",
                transform=ax.get_xaxis_transform(), va="bottom", ha="left", fontsize=7.5,
                color="#555555")
        on = [i for i in range(len(u)) if front[i]]
        on.sort(key=lambda i: u[i])
        if len(on) > 1:
            ax.step(u[on], r[on], where="pre", color="#666666", linestyle=(0, (5, 3)),
                    linewidth=1.1, zorder=2)
        for i in np.flatnonzero(placed):
            colour, marker, _ = _profile_style(index[profiles[i]])
            ax.errorbar([u[i]], [r[i]],
                        xerr=_yerr(u[i:i + 1], u_lo[i:i + 1], u_hi[i:i + 1]),
                        yerr=_yerr(r[i:i + 1], r_lo[i:i + 1], r_hi[i:i + 1]),
                        fmt="none", ecolor=colour, elinewidth=1, capsize=2.5, zorder=3)
            ax.plot([u[i]], [r[i]], marker=marker, markersize=8, color=colour,
                    markerfacecolor=colour if front[i] else "white", markeredgewidth=1.6,
                    linestyle="none", zorder=4)
        ax.set_xlim(left, right)
        ys = np.concatenate([r[placed], r_lo[placed], r_hi[placed]])
        ys = ys[np.isfinite(ys)]
        ax.set_ylim(min(-0.05, float(ys.min()) - 0.05), max(1.05, float(ys.max()) + 0.05))
        ax.set_xlabel("utility: defended ÷ teacher held-out score (1 = no loss for benign users)")
        ax.set_ylabel("resistance: 1 − worst-case transfer\nat the largest budget")
        handles = [
            Line2D([], [], marker="o", color="#333333", markerfacecolor="#333333",
                   linestyle="none", label="on the Pareto front"),
            Line2D([], [], marker="o", color="#333333", markerfacecolor="white",
                   linestyle="none", label="dominated by another profile"),
            Line2D([], [], color="#666666", linestyle=(0, (5, 3)), label="Pareto front"),
            Line2D([], [], color="#444444", linestyle=":", label="ranking threshold"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=2,
                   title="bars: 95% CI; better is up and to the right")
        _place_labels(fig, ax, [(profiles[i], u[i], r[i]) for i in np.flatnonzero(placed)])
        missing = [profiles[i] for i in range(len(u)) if not placed[i]]
        title = "Resistance vs utility"
        budgets = {str(b) for b in table.get("budget_max", pd.Series(dtype=str)).dropna()}
        if len(budgets) == 1:
            title += f" (largest budget: {budgets.pop()})"
        fig.suptitle(title)
        if missing:
            ax.set_title("not shown (utility not measured): " + ", ".join(missing),
                         fontsize=7.5, color="#555555")
        return _save(fig, Path(path_stem))


_DIRECTIONS = ((1, 0.5, "left", "bottom"), (1, -0.5, "left", "top"), (-1, 0.5, "right", "bottom"),
               (-1, -0.5, "right", "top"), (0, 1, "center", "bottom"), (0, -1, "center", "top"),
               (1, 1.4, "left", "bottom"), (-1, -1.4, "right", "top"),
               (1, -1.4, "left", "top"), (-1, 1.4, "right", "bottom"))


def _place_labels(fig: Figure, ax: Axes, points: Sequence[tuple[str, float, float]]) -> None:
    """Name each point next to it: try positions around it at growing distance (beyond the
    first ring a thin leader line joins label and point) and keep the first that overlaps no
    marker, error bar or earlier label and stays inside the axes; if none is free, the one
    with the least overlap."""
    FigureCanvasAgg(fig)
    fig.draw_without_rendering()  # resolve the layout so window extents are final
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    taken = [line.get_window_extent(renderer) for line in ax.lines
             if len(np.atleast_1d(line.get_xdata())) == 1]  # the markers
    for collection in ax.collections:  # the error bars, segment by segment
        if isinstance(collection, LineCollection):
            for segment in collection.get_segments():
                xy = ax.transData.transform(segment)
                taken.append(Bbox.from_extents(xy[:, 0].min() - 1, xy[:, 1].min() - 1,
                                               xy[:, 0].max() + 1, xy[:, 1].max() + 1))

    def overlap(box: Bbox) -> float:
        inside = Bbox.intersection(box, frame)
        outside = box.width * box.height - (inside.width * inside.height if inside else 0.0)
        area = 0.0
        for other in taken:
            common = Bbox.intersection(box, other)
            area += common.width * common.height if common is not None else 0.0
        return area + 10 * outside

    for name, x, y in sorted(points, key=lambda p: -p[2]):
        best: tuple[float, tuple[float, float, str, str]] | None = None
        for radius in (7.0, 18.0, 32.0):
            for ux, uy, ha, va in _DIRECTIONS:
                text = ax.annotate(name, (x, y), xytext=(ux * radius, uy * radius * 0.8),
                                   textcoords="offset points", ha=ha, va=va, fontsize=8)
                score = overlap(text.get_window_extent(renderer))
                text.remove()
                if best is None or score < best[0]:
                    best = (score, (ux * radius, uy * radius * 0.8, ha, va))
                if score == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        dx, dy, ha, va = best[1]
        far = abs(dx) > 8 or abs(dy) > 8
        label = ax.annotate(name, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha,
                            va=va, fontsize=8, color="#111111", zorder=5,
                            arrowprops={"arrowstyle": "-", "color": "#777777",
                                        "linewidth": 0.6, "shrinkA": 1, "shrinkB": 5}
                            if far else None)
        label.set_in_layout(False)
        taken.append(label.get_window_extent(renderer))


# ---------------------------------------------------------------------- detection timeline


def _flags(series: pd.DataFrame) -> tuple[float, float, float, float]:
    """(first flag query, transfer at flag, its low, its high) of one series: the earliest
    seed-mean flag over its budgets; ``nan`` when never flagged."""
    if "flagged_at" not in series:
        return math.nan, math.nan, math.nan, math.nan
    flagged = series.dropna(subset=["flagged_at"])
    if flagged.empty:
        return math.nan, math.nan, math.nan, math.nan
    position = int(np.argmin(pd.to_numeric(flagged["flagged_at"]).to_numpy(dtype=float)))
    first = {str(k): v for k, v in flagged.iloc[position].items()}

    def get(name: str) -> float:
        value = first.get(name)
        return float(value) if value is not None and not pd.isna(value) else math.nan

    return (get("flagged_at"), get("transfer_at_flag"), get("transfer_at_flag_low"),
            get("transfer_at_flag_high"))


def plot_detection_timeline(frame: pd.DataFrame, path_stem: Path,
                            order: Sequence[str] | None = None) -> list[Path]:
    """Transfer against attacker queries (log x), one panel per attack, one line per profile,
    with a vertical line at the query where the defense first flagged the attacker (its
    number on top) and a star at the transfer of a student trained only on the pre-flag
    harvest (with its CI). One figure per task; ``[]`` when no record has ``flagged_at``."""
    curves = _curves(frame)
    if curves.empty or "flagged_at" not in curves or curves["flagged_at"].isna().all():
        return []
    written: list[Path] = []
    for task, task_curves, stem in _per_task(curves, Path(path_stem)):
        attacks = sorted(task_curves["attack"].astype(str).unique())
        styles = _series_styles(task_curves, order)
        ncols = min(len(attacks), 3)
        nrows = math.ceil(len(attacks) / ncols)
        legend_cols = min(len(styles) + 2, 3)
        legend_rows = math.ceil((len(styles) + 2) / legend_cols)
        with style():
            fig = Figure(figsize=(4.2 * ncols + 0.6, 3.3 * nrows + 0.8 + 0.22 * legend_rows),
                         layout="constrained")
            axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
            values = task_curves[["transfer", "transfer_low", "transfer_high"]].to_numpy(float)
            finite = values[np.isfinite(values)]
            low = min(-0.1, float(finite.min()) - 0.05) if finite.size else -0.1
            high = max(1.1, float(finite.max()) + 0.05) if finite.size else 1.1
            never: set[str] = set()
            for ax, attack in zip(axes, attacks, strict=False):
                panel = task_curves[task_curves["attack"].astype(str) == attack]
                xs_all = [panel["x_queries"].to_numpy(dtype=float)]
                for name, series in panel.groupby("series", sort=False):
                    look = styles[str(name)]
                    series = series.sort_values("x_queries")
                    xs = series["x_queries"].to_numpy(dtype=float)
                    ys = series["transfer"].to_numpy(dtype=float)
                    flag, taf, taf_low, taf_high = _flags(series)
                    if math.isnan(flag):  # context only: thin and faded, no band
                        never.add(str(name))
                        ax.plot(xs, ys, color=look.colour, marker=look.marker, markersize=3.5,
                                linestyle=look.linestyle, linewidth=0.9, alpha=0.45,
                                label=str(name), zorder=2)
                        continue
                    ax.plot(xs, ys, color=look.colour, marker=look.marker,
                            linestyle=look.linestyle, label=str(name), zorder=3)
                    ax.fill_between(xs, series["transfer_low"].to_numpy(dtype=float),
                                    series["transfer_high"].to_numpy(dtype=float),
                                    color=look.colour, alpha=0.12, linewidth=0, zorder=2)
                    xs_all.append(np.array([flag]))
                    ax.axvline(flag, color=look.colour, linestyle=look.linestyle,
                               linewidth=1.3, alpha=0.9, zorder=2.5)
                    ax.text(flag, 0.995, f"{flag:,.0f}", transform=ax.get_xaxis_transform(),
                            rotation=90, va="top", ha="right", fontsize=7, color=look.colour)
                    if math.isnan(taf):
                        continue
                    err = _yerr(np.array([taf]), np.array([taf_low]), np.array([taf_high]))
                    ax.errorbar([flag], [taf], yerr=err, fmt="*", markersize=11,
                                color=look.colour, markeredgecolor="black",
                                markeredgewidth=0.6, elinewidth=1, capsize=2.5, zorder=4)
                for level in (0.0, 1.0):
                    ax.axhline(level, color="#555555", linewidth=0.8, linestyle=(0, (4, 3)),
                               zorder=1)
                _format_x(ax, np.concatenate(xs_all), log=True, money=False,
                          measured=True)
                ax.set_ylim(low, high)
                ax.set_title(f"attack: {attack}")
                ax.set_xlabel("attacker queries sent (log scale)")
            for ax in axes[len(attacks):]:
                ax.remove()
            for ax in axes[::ncols]:
                ax.set_ylabel("transfer (0 = base, 1 = teacher)")
            legend: dict[str, Artist] = {}
            for ax in axes[: len(attacks)]:
                for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                    legend.setdefault(label, handle)
            names = sorted(legend, key=lambda label: styles[label].order)
            handles = [legend[n] for n in names]
            labels = [f"{n} (never flagged)" if n in never and _never_everywhere(
                task_curves, n) else n for n in names]
            handles += [Line2D([], [], color="#333333", linewidth=1.3),
                        Line2D([], [], marker="*", markersize=10, color="#888888",
                               markeredgecolor="black", linestyle="none")]
            labels += ["first flag (query index on top)",
                       "transfer of a student trained on pre-flag harvest"]
            fig.legend(handles, labels, loc="outside lower center", ncols=legend_cols,
                       title="profile (shaded: 95% CI; faded: never flagged by this attack)")
            fig.suptitle(f"Detection timeline — task: {task}")
            written += _save(fig, stem)
    return written


def _never_everywhere(curves: pd.DataFrame, series: str) -> bool:
    rows = curves[curves["series"] == series]
    return "flagged_at" not in rows or bool(rows["flagged_at"].isna().all())
