"""The plan of a run: a scenario's grid of :class:`Cell` coordinates, in the order they run.

The grid is the union of the scenario's ``grids:`` (default: the full cross product of
endpoints x tasks x attacks x budgets x students x seeds), with budgets smallest first, so a
curve fills from its cheap end. A grid has at least one cell and at most :data:`MAX_CELLS`
(:func:`grid_problems`). Nothing here imports torch or starts anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from extractbench.config.budget import Budget
from extractbench.config.scenario import Grid, Scenario

__all__ = ["MAX_CELLS", "Cell", "budget_size", "grid", "grid_problems", "grid_size_bound"]

MAX_CELLS = 20_000
"""Most cells a scenario may have: each cell trains a student, so even a quick cell makes this
days of work; split a larger study into several scenarios."""


@dataclass(frozen=True)
class Cell:
    """Coordinates of one measurement."""

    endpoint: str
    task: str
    attack: str
    budget: Budget
    student: str
    seed: int

    @property
    def id(self) -> str:
        return "/".join([self.endpoint, self.task, self.attack, self.budget.label(),
                         self.student, f"s{self.seed}"])

    @property
    def slug(self) -> str:
        """The id as a file name (``/`` becomes ``__``)."""
        return self.id.replace("/", "__")


def budget_size(b: Budget) -> tuple[float, float, float]:
    """Sort key of a budget: queries, then tokens, then dollars."""
    return (b.queries or 0, b.tokens or 0, b.usd or 0)


def grid(sc: Scenario) -> list[Cell]:
    """The scenario's cells: the union of its grids (default: the full cross product of
    endpoints x tasks x attacks x budgets x students x seeds), budgets smallest first."""
    budgets = sorted(sc.budgets, key=budget_size)
    cells: dict[str, Cell] = {}
    for g in sc.grids or [Grid()]:
        def pick(section: str, names: list[Any], g: Grid = g) -> list[Any]:
            chosen = getattr(g, section)
            return [n for n in names if chosen is None or n in chosen]

        for e in pick("endpoints", list(sc.endpoints)):
            for t in pick("tasks", list(sc.tasks)):
                for a in pick("attacks", list(sc.attacks)):
                    for b in budgets:
                        if g.budgets is not None and b.label() not in g.budgets:
                            continue
                        for s in pick("students", list(sc.students)):
                            for seed in pick("seeds", list(sc.seeds)):
                                cell = Cell(e, t, a, b, s, seed)
                                cells.setdefault(cell.id, cell)
    return list(cells.values())


def grid_size_bound(sc: Scenario) -> int:
    """An upper bound on ``len(grid(sc))`` (the sub-grids' sizes added up), without building
    the cells."""
    total = 0
    for g in sc.grids or [Grid()]:
        sizes = [len(getattr(g, section) or getattr(sc, section))
                 for section in ("endpoints", "tasks", "attacks", "budgets", "students", "seeds")]
        total += math.prod(sizes)
    return total


def grid_problems(sc: Scenario) -> list[str]:
    """``field.path: problem`` lines when the grid has no cells or more than
    :data:`MAX_CELLS`; it is built only when its bound is near the limit or below."""
    where = "grids" if sc.grids else "(top level)"
    bound = grid_size_bound(sc)
    n = bound if bound > 10 * MAX_CELLS else len(grid(sc))
    if n > MAX_CELLS:
        size = f"up to {n:,}" if bound > 10 * MAX_CELLS else f"{n:,}"
        return [f"{where}: the grid has {size} cells, more than {MAX_CELLS:,} (use grids: to "
                "choose sub-grids, or split it into several scenarios)"]
    if n == 0:
        return [f"{where}: the grid has no cells (check grids:)"]
    return []
