"""The detection plots: the timeline (transfer against attacker queries with the query at
which the defense first flagged the attacker and the transfer of a student trained on the
pre-flag harvest), and the detector's calibration (TPR at thresholds calibrated to 1% and 5%
FPR, and the tested ROC AUC, per defended profile and attack)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from extractbench.report import columns as c
from extractbench.report.calibration import Calibrated, calibrated
from extractbench.report.defender import at_largest_budget
from extractbench.report.plot_style import (
    curves_of,
    format_x,
    per_task,
    profile_index,
    profile_style,
    save,
    series_styles,
    slug,
    style,
)
from extractbench.report.plot_utility import yerr

__all__ = ["plot_detection_calibration", "plot_detection_timeline"]


def _flags(series: pd.DataFrame) -> tuple[float, float, float, float]:
    """(first flag query, transfer at flag, its low, its high) of one series: the earliest
    seed-mean flag over its budgets; ``nan`` when never flagged."""
    if c.FLAGGED_AT not in series:
        return math.nan, math.nan, math.nan, math.nan
    flagged = series.dropna(subset=[c.FLAGGED_AT])
    if flagged.empty:
        return math.nan, math.nan, math.nan, math.nan
    position = int(np.argmin(pd.to_numeric(flagged[c.FLAGGED_AT]).to_numpy(dtype=float)))
    first = {str(k): v for k, v in flagged.iloc[position].items()}

    def get(name: str) -> float:
        value = first.get(name)
        return float(value) if value is not None and not pd.isna(value) else math.nan

    return (get(c.FLAGGED_AT), get(c.TRANSFER_AT_FLAG), get(c.low(c.TRANSFER_AT_FLAG)),
            get(c.high(c.TRANSFER_AT_FLAG)))


def plot_detection_timeline(frame: pd.DataFrame, path_stem: Path,
                            order: Sequence[str] | None = None) -> list[Path]:
    """Transfer against attacker queries (log x), one panel per attack, one line per profile,
    with a vertical line at the query where the defense first flagged the attacker (its
    number on top) and a star at the transfer of a student trained only on the pre-flag
    harvest (with its CI). One figure per task; ``[]`` when no record has ``flagged_at``."""
    curves = curves_of(frame)
    if curves.empty or c.FLAGGED_AT not in curves or curves[c.FLAGGED_AT].isna().all():
        return []
    written: list[Path] = []
    for task, task_curves, _, stem in per_task(curves, Path(path_stem)):
        attacks = sorted(task_curves[c.ATTACK].astype(str).unique())
        styles = series_styles(task_curves, order)
        ncols = min(len(attacks), 3)
        nrows = math.ceil(len(attacks) / ncols)
        legend_cols = min(len(styles) + 2, 3)
        legend_rows = math.ceil((len(styles) + 2) / legend_cols)
        with style():
            fig = Figure(figsize=(4.2 * ncols + 0.6, 3.3 * nrows + 0.8 + 0.22 * legend_rows),
                         layout="constrained")
            axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
            values = task_curves[[c.TRANSFER, c.TRANSFER_LOW, c.TRANSFER_HIGH]].to_numpy(float)
            finite = values[np.isfinite(values)]
            low = min(-0.1, float(finite.min()) - 0.05) if finite.size else -0.1
            high = max(1.1, float(finite.max()) + 0.05) if finite.size else 1.1
            never: set[str] = set()
            for ax, attack in zip(axes, attacks, strict=False):
                panel = task_curves[task_curves[c.ATTACK].astype(str) == attack]
                xs_all = [panel[c.X_QUERIES].to_numpy(dtype=float)]
                for name, series in panel.groupby(c.SERIES, sort=False):
                    look = styles[str(name)]
                    series = series.sort_values(c.X_QUERIES)
                    xs = series[c.X_QUERIES].to_numpy(dtype=float)
                    ys = series[c.TRANSFER].to_numpy(dtype=float)
                    flag, taf, taf_low, taf_high = _flags(series)
                    if math.isnan(flag):  # context only: thin and faded, no band
                        never.add(str(name))
                        ax.plot(xs, ys, color=look.colour, marker=look.marker, markersize=3.5,
                                linestyle=look.linestyle, linewidth=0.9, alpha=0.45,
                                label=str(name), zorder=2)
                        continue
                    ax.plot(xs, ys, color=look.colour, marker=look.marker,
                            linestyle=look.linestyle, label=str(name), zorder=3)
                    ax.fill_between(xs, series[c.TRANSFER_LOW].to_numpy(dtype=float),
                                    series[c.TRANSFER_HIGH].to_numpy(dtype=float),
                                    color=look.colour, alpha=0.12, linewidth=0, zorder=2)
                    xs_all.append(np.array([flag]))
                    ax.axvline(flag, color=look.colour, linestyle=look.linestyle,
                               linewidth=1.3, alpha=0.9, zorder=2.5)
                    ax.text(flag, 0.995, f"{flag:,.0f}", transform=ax.get_xaxis_transform(),
                            rotation=90, va="top", ha="right", fontsize=7, color=look.colour)
                    if math.isnan(taf):
                        continue
                    err = yerr(np.array([taf]), np.array([taf_low]), np.array([taf_high]))
                    ax.errorbar([flag], [taf], yerr=err, fmt="*", markersize=11,
                                color=look.colour, markeredgecolor="black",
                                markeredgewidth=0.6, elinewidth=1, capsize=2.5, zorder=4)
                for level in (0.0, 1.0):
                    ax.axhline(level, color="#555555", linewidth=0.8, linestyle=(0, (4, 3)),
                               zorder=1)
                format_x(ax, np.concatenate(xs_all), log=True, money=False,
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
            written += save(fig, stem)
    return written


def _never_everywhere(curves: pd.DataFrame, series: str) -> bool:
    """The series was never flagged at any budget of any attack."""
    rows = curves[curves[c.SERIES] == series]
    return c.FLAGGED_AT not in rows or bool(rows[c.FLAGGED_AT].isna().all())


def _calibrations(cells: pd.DataFrame) -> list[tuple[str, str, Calibrated]]:
    """(profile, attack, its calibration at its largest budget) of each pair that has one."""
    out = []
    for (profile, attack), group in cells.groupby([c.PROFILE, c.ATTACK], sort=False):
        figures = calibrated(at_largest_budget(group))
        if figures is not None:
            out.append((str(profile), str(attack), figures))
    return out


def _zero(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def plot_detection_calibration(frame: pd.DataFrame, path_stem: Path,
                               order: Sequence[str] | None = None) -> list[Path]:
    """Per defended (profile, attack) at its largest budget, the mean over seeds of the share
    of attacker keys above the thresholds calibrated on benign streams to 1% FPR (hatched
    bar) and 5% FPR (solid bar), and of the tested ROC AUC (diamond), each cell's best test
    (:func:`~extractbench.report.calibration.best_test`). ``frame``: a cells frame
    (:func:`~extractbench.report.frames.records_frame`). One figure per task with
    calibration (``<path_stem>-<task>`` when the frame has several tasks); ``[]`` when no
    record has calibration."""
    if c.CAL_TEST not in frame or c.STATUS not in frame:
        return []
    ok = frame[frame[c.STATUS] == c.OK]
    if ok[c.CAL_TEST].isna().all():
        return []
    tasks = list(dict.fromkeys(ok[c.TASK].astype(str)))
    index = profile_index(list(dict.fromkeys(ok[c.PROFILE].astype(str))), order)
    written: list[Path] = []
    for task in tasks:
        bars = _calibrations(ok[ok[c.TASK].astype(str) == task])
        if not bars:
            continue
        stem = Path(path_stem)
        if len(tasks) > 1:
            stem = stem.with_name(f"{stem.name}-{slug(task)}")
        with style():
            fig = Figure(figsize=(max(4.8, 1.25 * len(bars) + 1.6), 4.4), layout="constrained")
            ax = fig.subplots()
            for i, (profile, _, cal) in enumerate(bars):
                colour = profile_style(index[profile])[0]
                for dx, tpr, solid in ((-0.19, cal.tpr_1, False), (0.19, cal.tpr_5, True)):
                    ax.bar(i + dx, _zero(tpr), width=0.36, color=colour,
                           alpha=1.0 if solid else 0.4, hatch=None if solid else "///",
                           edgecolor="black" if solid else colour, linewidth=0.6, zorder=2)
                    ax.text(i + dx, _zero(tpr) + 0.015,
                            "–" if math.isnan(tpr) else f"{100 * tpr:.0f}%", ha="center",
                            va="bottom", fontsize=6.5, zorder=3)
                if not math.isnan(cal.auc_tested):
                    ax.plot([i], [cal.auc_tested], marker="D", markersize=7, linestyle="none",
                            markerfacecolor="white", markeredgecolor="black",
                            markeredgewidth=1.2, zorder=4)
            ax.axhline(0.5, color="#555555", linewidth=0.8, linestyle=(0, (1, 2)), zorder=1)
            ax.set_xticks(range(len(bars)),
                          [f"{p}\n{a}\n({', '.join(cal.tests)})" for p, a, cal in bars],
                          fontsize=7.5)
            pad = 0.1 + max(0.0, (3 - len(bars)) / 2)  # a lone pair keeps narrow bars
            ax.set_xlim(-0.5 - pad, len(bars) - 0.5 + pad)
            ax.set_ylim(0, 1.12)
            ax.set_ylabel("TPR (share of attacker keys); AUC")
            ax.set_xlabel("defended profile, attack (detector test)")
            ax.set_title("thresholds calibrated on benign streams other than the cell's\n"
                         "largest budget, mean over seeds", fontsize=8)
            handles = [Patch(facecolor="#bbbbbb", edgecolor="#777777", hatch="///"),
                       Patch(facecolor="#777777", edgecolor="black"),
                       Line2D([], [], marker="D", markersize=7, linestyle="none",
                              markerfacecolor="white", markeredgecolor="black"),
                       Line2D([], [], color="#555555", linewidth=0.8, linestyle=(0, (1, 2)))]
            fig.legend(handles, ["TPR at 1% FPR", "TPR at 5% FPR",
                                 "AUC tested (vs benign keys the test scored)", "AUC 0.5: chance"],
                       loc="outside lower center", ncols=2)
            fig.suptitle(f"Detector calibration — task: {task}")
            written += save(fig, stem)
    return written
