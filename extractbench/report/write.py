"""Writing a leaderboard report: the analysis rendered to Markdown, HTML, CSV and plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from extractbench.errors import ExtractbenchError
from extractbench.logs.records import CellRecord
from extractbench.report import columns as c
from extractbench.report.analysis import analyze
from extractbench.report.board import UTILITY_THRESHOLD
from extractbench.report.frames import records_frame
from extractbench.report.html_page import render_html
from extractbench.report.markdown import render_markdown
from extractbench.report.sections import report_sections

if TYPE_CHECKING:
    from extractbench.config.scenario import Ranking

__all__ = ["PLOT_STEMS", "ReportError", "write_leaderboard"]

PLOT_STEMS = ("transfer_vs_budget", "transfer_vs_cost", "resistance_vs_utility",
              "detection_timeline", "detection_calibration")
"""The file stems of the report's figures (``<stem>.png``, or ``<stem>-<task>.png``)."""

TITLE = "extractbench leaderboard"


class ReportError(ExtractbenchError, ValueError):
    """A leaderboard that cannot be built, e.g. from no records."""


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[name for name in (c.ITEMS,) if name in frame])


def _remove_old_plots(out_dir: Path) -> None:
    """Plots of an earlier board (one per task, or one for all) would be left behind."""
    for stem in PLOT_STEMS:
        for old in [*out_dir.glob(f"{stem}.*"), *out_dir.glob(f"{stem}-*.*")]:
            if old.suffix in (".png", ".svg"):
                old.unlink()


def write_leaderboard(
    records: Sequence[CellRecord], out_dir: Path, by_task: bool | None = None,
    n_boot: int = 1000, seed: int = 0, plots: bool = True, html: bool = True,
    utility_threshold: float = UTILITY_THRESHOLD, ranking: Ranking | None = None,
) -> list[Path]:
    """Write ``leaderboard.md``, ``leaderboard.csv`` (the per-profile table), ``cells.csv``
    (every cell, failed ones included), ``leaderboard.html`` (self-contained: tables and
    plots embedded) and the plots (PNG and SVG) into ``out_dir``; return the paths, the
    Markdown file first.

    ``by_task=None`` adds a per-(profile, task) table when there are several tasks
    (``leaderboard.csv`` then has one row per profile and task). Records from several runs
    merge (see :func:`~extractbench.report.frames.load_records`). ``ranking`` is the
    scenario's ``ranking:`` (what a profile must be measured on to be ranked); ``None``: the
    default of :mod:`~extractbench.report.requirement`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = records_frame(records)
    if frame.empty:
        raise ReportError("no records to build a leaderboard from")
    analysis = analyze(frame, by_task=by_task, n_boot=n_boot, seed=seed,
                       utility_threshold=utility_threshold, ranking=ranking)

    csv_path = out_dir / "leaderboard.csv"
    board = analysis.task_table if analysis.task_table is not None else analysis.table
    board.to_csv(csv_path, index=False)
    cells_path = out_dir / "cells.csv"
    _csv_frame(frame).to_csv(cells_path, index=False)

    figures: list[Path] = []
    if plots:
        _remove_old_plots(out_dir)
    if plots and analysis.any_ok:
        from extractbench.report.plots import plot_report

        figures = plot_report(analysis, out_dir)

    sections = report_sections(analysis, figures)
    md_path = out_dir / "leaderboard.md"
    md_path.write_text(render_markdown(TITLE, sections), encoding="utf-8")
    paths = [md_path, csv_path, cells_path]
    if html:
        html_path = out_dir / "leaderboard.html"
        html_path.write_text(render_html(TITLE, sections), encoding="utf-8")
        paths.append(html_path)
    return [*paths, *figures]
