"""The scenario's gates: thresholds a cell's record must meet (pure functions over records).

A ``min``/``max`` gate is checked on each record it applies to (its ``where:`` coordinates). A
``beats`` gate compares a pair of cells that differ only by student, so it is checked when the
second of the pair is known: :class:`GateBook` keeps the records of a run for that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from extractbench.config.scenario import Gate

if TYPE_CHECKING:
    from extractbench.logs.records import CellRecord

__all__ = ["GateBook", "failures", "gate_applies", "gate_value", "same_cell_but_student"]


def gate_applies(gate: Gate, record: CellRecord) -> bool:
    """Whether ``record`` is an ok cell at the gate's ``where:`` coordinates."""
    coords: dict[str, object] = {
        "endpoint": record.endpoint, "task": record.task, "attack": record.attack,
        "student": record.student, "budget": record.budget_label, "seed": record.seed,
    }
    return record.status == "ok" and all(str(coords.get(k)) == str(v)
                                         for k, v in gate.where.items())


def gate_value(gate: Gate, record: CellRecord) -> float | None:
    """The gated metric of an ok record (``transfer`` is its point estimate)."""
    if record.status != "ok":
        return None
    if gate.metric == "transfer":
        return None if record.transfer is None else record.transfer.value
    value: float | None = getattr(record, gate.metric)
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
