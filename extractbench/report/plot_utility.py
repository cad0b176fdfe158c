"""The resistance vs utility plot: one point per profile with 95% CIs both ways, the Pareto
front, and the utility threshold below which profiles are not ranked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox

from extractbench.report import columns as c
from extractbench.report.curve import pareto_front
from extractbench.report.plot_style import profile_index, profile_style, save, style

__all__ = ["plot_resistance_vs_utility", "yerr"]


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    """``table[name]`` as floats (all ``nan`` when there is no such column)."""
    if name not in table:
        return np.full(len(table), np.nan)
    return pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)


def yerr(values: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    """Error-bar extents (below, above) of ``values`` with bounds ``lows``/``highs``; ``nan``
    bounds draw no bar."""
    below = np.where(np.isnan(lows), 0.0, values - lows)
    above = np.where(np.isnan(highs), 0.0, highs - values)
    return np.vstack([np.maximum(below, 0.0), np.maximum(above, 0.0)])


def plot_resistance_vs_utility(table: pd.DataFrame, path_stem: Path,
                               utility_threshold: float = 0.9,
                               order: Sequence[str] | None = None) -> list[Path]:
    """Resistance at the largest common budget vs utility, one point per profile with 95% CI
    bars in both directions, the Pareto front filled and joined by a dashed staircase, dominated
    profiles hollow, and the ranking threshold as a dotted vertical line.

    ``table`` is a :func:`~extractbench.report.leaderboard.leaderboard_frame` (one row per profile).
    Profiles without a utility cannot be placed, and incomplete ones (``complete`` false: not
    measured on the whole ranking set, so their resistance is not comparable) are not; both
    are named in a note under the axes. Returns ``[]`` (no figure) when no profile can be
    placed.
    """
    u = _column(table, c.UTILITY)
    r = _column(table, c.RESISTANCE)
    complete = table[c.COMPLETE].astype(bool).to_numpy() if c.COMPLETE in table \
        else np.ones(len(table), dtype=bool)
    placed = np.isfinite(u) & np.isfinite(r) & complete
    if not placed.any():
        return []
    profiles = [str(p) for p in table[c.PROFILE]]
    index = profile_index(profiles, order)
    front = pareto_front(np.where(placed, u, np.nan), r)
    u_lo, u_hi = _column(table, c.low(c.UTILITY)), _column(table, c.high(c.UTILITY))
    r_lo, r_hi = _column(table, c.low(c.RESISTANCE)), _column(table, c.high(c.RESISTANCE))
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
            colour, marker, _ = profile_style(index[profiles[i]])
            ax.errorbar([u[i]], [r[i]],
                        xerr=yerr(u[i:i + 1], u_lo[i:i + 1], u_hi[i:i + 1]),
                        yerr=yerr(r[i:i + 1], r_lo[i:i + 1], r_hi[i:i + 1]),
                        fmt="none", ecolor=colour, elinewidth=1, capsize=2.5, zorder=3)
            ax.plot([u[i]], [r[i]], marker=marker, markersize=8, color=colour,
                    markerfacecolor=colour if front[i] else "white", markeredgewidth=1.6,
                    linestyle="none", zorder=4)
        ax.set_xlim(left, right)
        ys = np.concatenate([r[placed], r_lo[placed], r_hi[placed]])
        ys = ys[np.isfinite(ys)]
        ax.set_ylim(min(-0.05, float(ys.min()) - 0.05), max(1.05, float(ys.max()) + 0.05))
        ax.set_xlabel("utility: defended ÷ teacher held-out score (1 = no loss for benign users)")
        ax.set_ylabel("resistance: 1 − worst-case transfer\nat the largest common budget")
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
        notes = []
        for why, names in (
                ("incomplete", [profiles[i] for i in range(len(u)) if not complete[i]]),
                ("utility not measured", [profiles[i] for i in range(len(u))
                                          if complete[i] and not placed[i]])):
            if names:
                notes.append(f"not shown ({why}): " + ", ".join(names))
        title = "Resistance vs utility"
        budgets = {str(b) for b in table.get(c.BUDGET_MAX, pd.Series(dtype=str)).dropna()}
        if len(budgets) == 1:
            title += f" (largest common budget: {budgets.pop()})"
        fig.suptitle(title)
        if notes:
            ax.set_title("; ".join(notes), fontsize=7.5, color="#555555", wrap=True)
        return save(fig, Path(path_stem))


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
