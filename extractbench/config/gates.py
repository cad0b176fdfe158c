"""The scenario's gates: thresholds a cell's record must meet (pure functions over records).

A ``min``/``max`` gate is checked on each record it applies to (its ``where:`` coordinates). A
``beats`` gate compares a pair of cells that differ only by student, so it is checked when the
second of the pair is known: :class:`GateBook` keeps the records of a run for that.

A gate that selects no cell would pass every run without checking anything, so
:func:`gate_problems` refuses one at validate time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, get_args

from extractbench.config.scenario import Gate, GateCoordinate

if TYPE_CHECKING:
    from extractbench.config.plan import Cell
    from extractbench.logs.records import CellRecord

__all__ = ["COORDINATES", "GateBook", "at", "cell_coordinates", "failures", "gate_applies",
           "gate_problems", "gate_value", "metric_value", "record_coordinates",
           "same_cell_but_student"]

COORDINATES: tuple[str, ...] = get_args(GateCoordinate)
"""The coordinates a gate's ``where:`` can name."""


def at(where: Mapping[GateCoordinate, object], coords: Mapping[str, object]) -> bool:
    """Whether cell coordinates ``coords`` match every coordinate a ``where:`` names."""
    return all(str(coords.get(k)) == str(v) for k, v in where.items())


def record_coordinates(record: CellRecord) -> dict[str, object]:
    """A record's cell coordinates, as a ``where:`` names them."""
    return {"endpoint": record.endpoint, "task": record.task, "attack": record.attack,
            "student": record.student, "budget": record.budget_label, "seed": record.seed}


def gate_applies(gate: Gate, record: CellRecord) -> bool:
    """Whether ``record`` is an ok cell at the gate's ``where:`` coordinates."""
    return record.status == "ok" and at(gate.where, record_coordinates(record))


def cell_coordinates(cell: Cell) -> dict[str, object]:
    """A planned cell's coordinates, as :func:`gate_applies` reads them from its record."""
    return {"endpoint": cell.endpoint, "task": cell.task, "attack": cell.attack,
            "student": cell.student, "budget": cell.budget.label(), "seed": cell.seed}


def gate_problems(gates: Sequence[Gate], cells: Sequence[Cell]) -> list[str]:
    """``gates.N.field: problem`` lines for the gates that would check no cell of ``cells``:
    a ``where:`` value no cell has, values no cell has together, or a ``beats`` gate none of
    whose cells has its partner (the same cell trained with the ``beats`` student)."""
    coords = [cell_coordinates(c) for c in cells]
    index: dict[str, dict[str, set[int]]] = {k: {} for k in COORDINATES}
    for i, c in enumerate(coords):
        for k, v in c.items():
            index[k].setdefault(str(v), set()).add(i)
    pairs = _Pairs(coords)
    partnered: dict[str, set[int]] = {}
    out = []
    for n, gate in enumerate(gates):
        chosen = _selected(gate, index, len(cells))
        if isinstance(chosen, str):
            out.append(f"gates.{n}.{chosen}")
            continue
        if gate.beats is None:
            continue
        if gate.beats not in partnered:
            partnered[gate.beats] = pairs.partnered(gate.beats)
        if not chosen & partnered[gate.beats]:
            out.append(f"gates.{n}.beats: no cell it selects has a partner trained with "
                       f"{gate.beats!r} (the same endpoint, task, attack, budget and seed; put "
                       f"{gate.beats!r} in the same sub-grids)")
    return out


def _selected(gate: Gate, index: dict[str, dict[str, set[int]]], n: int) -> set[int] | str:
    """The cells (indices) at ``gate.where``, or the problem when there are none."""
    sets = []
    for k, v in gate.where.items():
        cells = index[k].get(str(v))
        if cells is None:
            known = sorted(index[k])
            shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            return f"where.{k}: {v!r} matches no cell (the grid's {k}s: {shown})"
        sets.append(cells)
    if not sets:
        return set(range(n))
    sets.sort(key=len)
    chosen = sets[0].intersection(*sets[1:])
    if not chosen:
        together = ", ".join(f"{k}={v}" for k, v in gate.where.items())
        return f"where: no cell has {together} (check grids:)"
    return chosen


class _Pairs:
    """Cells grouped by every coordinate but the student."""

    def __init__(self, coords: list[dict[str, object]]) -> None:
        self.keys = [(tuple(v for k, v in c.items() if k != "student"), c["student"])
                     for c in coords]
        self.students: dict[tuple[object, ...], set[object]] = {}
        for rest, student in self.keys:
            self.students.setdefault(rest, set()).add(student)

    def partnered(self, floor: str) -> set[int]:
        """Cells not trained with ``floor`` whose partner trained with it is in the grid."""
        return {i for i, (rest, student) in enumerate(self.keys)
                if student != floor and floor in self.students[rest]}


def gate_value(gate: Gate, record: CellRecord) -> float | None:
    """The gated metric of an ok record (``transfer`` is its point estimate)."""
    return metric_value(gate.metric, record)


def metric_value(metric: str, record: CellRecord) -> float | None:
    """A record's ``metric`` (``transfer``: its point estimate); ``None`` unless it is ok."""
    if record.status != "ok":
        return None
    if metric == "transfer":
        return None if record.transfer is None else record.transfer.value
    value: float | None = getattr(record, metric)
    return value


def same_cell_but_student(a: CellRecord, b: CellRecord) -> bool:
    return (a.endpoint, a.task, a.attack, a.budget_label, a.seed) == (
        b.endpoint, b.task, b.attack, b.budget_label, b.seed)


def _beats(gate: Gate, record: CellRecord, others: Iterable[CellRecord]) -> list[str]:
    assert gate.beats is not None
    if record.student == gate.beats:  # the floor finished second: check every partner
        pairs = [(r, record) for r in others
                 if r.student != gate.beats and same_cell_but_student(r, record)]
    else:
        pairs = [(record, r) for r in others
                 if r.student == gate.beats and same_cell_but_student(r, record)]
    out = []
    for learned, floor in pairs:
        if not gate_applies(gate, learned):
            continue
        value, low = gate_value(gate, learned), gate_value(gate, floor)
        if value is None or low is None:
            continue
        if value <= low:
            out.append(f"{learned.cell_id}: {gate.metric} {value:.3f} does not beat "
                       f"{gate.beats} ({low:.3f})")
    return out


def failures(gates: Sequence[Gate], record: CellRecord,
             others: Iterable[CellRecord] = ()) -> list[str]:
    """The gates ``record`` fails, one line each; ``others`` are the run's other records (the
    partners of ``beats`` gates)."""
    others = list(others)
    out = []
    for gate in gates:
        if gate.beats is not None:
            out.extend(_beats(gate, record, others))
            if record.student == gate.beats:  # the floor itself is not held to min/max
                continue
        if not gate_applies(gate, record):
            continue
        value = gate_value(gate, record)
        if value is None:
            continue
        if gate.min is not None and value < gate.min:
            out.append(f"{record.cell_id}: {gate.metric} {value:.3f} < min {gate.min}")
        if gate.max is not None and value > gate.max:
            out.append(f"{record.cell_id}: {gate.metric} {value:.3f} > max {gate.max}")
    return out


class GateBook:
    """A run's gates and the records seen so far; :meth:`check` each record as it finishes."""

    def __init__(self, gates: Sequence[Gate]) -> None:
        self.gates = list(gates)
        self._seen: dict[str, CellRecord] = {}

    def check(self, record: CellRecord) -> list[str]:
        """The gates ``record`` fails (``beats`` pairs are checked when both are known)."""
        self._seen[record.cell_id] = record
        return failures(self.gates, record, self._seen.values())
