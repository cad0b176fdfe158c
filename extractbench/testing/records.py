"""Synthetic cell records for tests of the report: valid
:class:`~extractbench.logs.records.CellRecord` s with every field overridable.

    cell_record("guarded", "random-pool", 1000, 0.3)            # transfer 0.3 ± 0.05
    cell_record("p", "a", 1000, 0.6, spent=600)                 # pool exhausted at 600
    cell_record("p", "a", 100, None, status="error", error="boom")
    scored_record("p", "a", 100, 0.4, n=50)                     # with per-item scores

Torch-free: only the record models and :mod:`extractbench.stats`.
"""

from __future__ import annotations

from extractbench.logs.records import CellRecord, Interval, ItemScores, Provenance
from extractbench.stats import bootstrap_transfer

__all__ = ["cell_record", "provenance", "scored_record"]


def provenance(**fields: object) -> Provenance:
    """A provenance of scenario ``unit`` at git ``fedcba9876543210``; ``fields`` override."""
    values: dict[str, object] = dict(
        scenario_name="unit", scenario_path="scenarios/unit.yaml", scenario_hash="e" * 64,
        git_sha="fedcba9876543210", extractbench_version="0.1.0", package_versions={},
        python="3.11", platform="test", torch_threads=1,
    )
    values.update(fields)
    return Provenance.model_validate(values)


def cell_record(
    profile: str = "p", attack: str = "a", queries: int = 100, transfer: float | None = 0.5,
    *, task: str = "t", seed: int = 0, student: str = "s", half_width: float = 0.05,
    teacher: float = 0.8, base: float = 0.2, cost: float = 0.0,
    budget: dict[str, float] | None = None, tokens_per_query: tuple[int, int] = (20, 5),
    spent: int | None = None, **fields: object,
) -> CellRecord:
    """An ok cell of ``profile`` on ``task`` by ``attack`` at a ``queries`` budget (label
    ``q<queries>``) whose student scores so that its transfer is ``transfer`` (CI ±
    ``half_width``); ``transfer=None`` leaves the scores out (for a failed or skipped cell).
    The campaign spent ``spent`` queries (default: all of the budget, stopping with ``budget
    exhausted``; fewer stop with ``attack pool exhausted``). ``fields`` override any
    :class:`CellRecord` field, e.g. ``utility``, ``flagged_at``, ``status``, ``run_id``,
    ``provenance``, ``defenses``, ``stop_reason``."""
    tokens_in, tokens_out = tokens_per_query
    used = queries if spent is None else spent
    values: dict[str, object] = dict(
        run_id="run-x", cell_id=f"{profile}/{task}/{attack}/q{queries}/{student}/{seed}",
        status="ok", endpoint="ref", profile=profile, model="m", task=task, attack=attack,
        student=student, budget=budget or {"queries": queries}, budget_label=f"q{queries}",
        seed=seed, queries=used, input_tokens=tokens_in * used,
        output_tokens=tokens_out * used, cost_usd=cost, wall_s=1.5, provenance=provenance(),
        stop_reason="budget exhausted" if used >= queries else "attack pool exhausted",
    )
    if transfer is not None:
        values.update(
            teacher_score=teacher, base_score=base,
            student_score=base + (teacher - base) * transfer, fidelity=0.7,
            transfer=Interval(value=transfer, low=transfer - half_width,
                              high=transfer + half_width))
    values.update(fields)
    return CellRecord.model_validate(values)


def scored_record(profile: str, attack: str, queries: int, transfer: float, *, n: int = 100,
                  seed: int = 0, **fields: object) -> CellRecord:
    """A :func:`cell_record` with per-item scores: the teacher always right, the base always
    wrong, the student right on the first ``round(transfer * n)`` items, so the transfer is
    exactly that, with a real bootstrap CI. ``fields`` go to :func:`cell_record`."""
    right = round(transfer * n)
    items = ItemScores(teacher=[1.0] * n, base=[0.0] * n,
                       student=[1.0] * right + [0.0] * (n - right), fidelity=[1.0] * n)
    interval = bootstrap_transfer(items.teacher, items.base, items.student, n_boot=200,
                                  seed=seed)
    record = cell_record(profile, attack, queries, None, seed=seed, **fields)  # type: ignore[arg-type]
    return record.model_copy(update=dict(
        n_heldout=n, teacher_score=1.0, base_score=0.0, student_score=right / n,
        transfer=interval, items=items, fidelity=1.0))
