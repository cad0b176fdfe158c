"""Progress display for long runs: cells done, the current cell's queries/s, spend and ETA.

Uses rich on a terminal; prints one line per finished cell otherwise (CI logs stay readable).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

from extractbench.config.budget import Spent
from extractbench.logs.records import CellRecord


class Progress:
    """Run-level and cell-level progress; a no-op when disabled."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self._tty = self.console.is_terminal
        self._rich: RichProgress | None = None
        self._run: TaskID | None = None
        self._cell: TaskID | None = None
        self._cell_t0 = 0.0
        self._cell_total: int | None = None
        self._done = 0
        self._n = 0

    def __enter__(self) -> Progress:
        if self.enabled and self._tty:
            self._rich = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                console=self.console, transient=False,
            )
            self._rich.__enter__()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._rich is not None:
            self._rich.__exit__(et, ev, tb)
            self._rich = None

    def start_run(self, n_cells: int) -> None:
        self._n = n_cells
        if self._rich is not None:
            self._run = self._rich.add_task("cells", total=n_cells, info="")
        elif self.enabled:
            print(f"extractbench: running {n_cells} cells", file=sys.stderr, flush=True)

    def start_cell(self, cell_id: str, total_queries: int | None) -> None:
        self._cell_t0 = time.time()
        self._cell_total = total_queries
        if self._rich is not None:
            if self._cell is not None:
                self._rich.remove_task(self._cell)
            self._cell = self._rich.add_task(cell_id, total=total_queries, info="")

    def spent(self, spent: Spent) -> None:
        if self._rich is None or self._cell is None:
            return
        dt = max(time.time() - self._cell_t0, 1e-6)
        info = (f"{spent.queries / dt:.0f} q/s  {spent.tokens} tok  ${spent.usd:.4f}")
        self._rich.update(self._cell, completed=spent.queries, info=info)

    def status(self, text: str) -> None:
        if self._rich is not None and self._cell is not None:
            self._rich.update(self._cell, info=text.split(": ", 1)[-1])

    def cell_done(self, record: CellRecord) -> None:
        self._done += 1
        if record.status == "ok" and record.transfer is not None:
            summary = (f"transfer {record.transfer.value:.2f} "
                       f"[{record.transfer.low:.2f}, {record.transfer.high:.2f}] "
                       f"student {record.student_score:.2f} queries {record.queries} "
                       f"${record.cost_usd:.4f} {record.wall_s:.0f}s")
        else:
            summary = f"{record.status}: {record.error}"
        if self._rich is not None:
            assert self._run is not None
            self._rich.update(self._run, advance=1)
            self._rich.console.print(f"  {record.cell_id}: {summary}")
        elif self.enabled:
            print(f"[{self._done}/{self._n}] {record.cell_id}: {summary}", file=sys.stderr,
                  flush=True)
