"""The defender's side of one cell on a defended profile: when the attacker was first flagged,
which benign keys were flagged, what the benign users received, and how much a student trained
only on what was harvested before the flag learns (``transfer_at_flag``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from extractbench.attacks.base import train_pairs
from extractbench.config.scenario import StudentSpec
from extractbench.logs.harvest import Entry
from extractbench.measure.detection import before_flag, read_events, summarize
from extractbench.measure.fit import fit_and_score
from extractbench.stats import bootstrap_transfer
from extractbench.tasks import Task

__all__ = ["detection_fields"]


def detection_fields(audit_path: Path, entries: Sequence[Entry], benign_ids: list[str],
                     benign: Any, task: Task, spec: StudentSpec, seed: int,
                     teacher_scores: list[float], base: list[float]) -> dict[str, Any]:
    """The record's detection fields (``flagged_at``, ``fpr``, ``benign_score``,
    ``transfer_at_flag``, ...) from the cell's audit log and harvest."""
    summary = summarize(read_events(audit_path), entries, benign_ids)
    out: dict[str, Any] = dict(
        flagged_at=summary.flagged_at, flag_reason=summary.flag_reason,
        benign_keys=summary.benign_keys, benign_flagged_keys=summary.benign_flagged_keys,
        fpr=summary.fpr, benign_harmed_keys=summary.benign_harmed_keys,
        harmed_rate=summary.harmed_rate, benign_harms=summary.benign_harms,
        benign_queries=benign.queries if benign is not None else 0,
        benign_score=(benign.score(task, task.split("benign")) if benign is not None
                      else None),
    )
    if summary.flagged_at is not None:
        early = train_pairs(before_flag(entries, summary.flagged_at))
        pre = fit_and_score(spec, early, seed, task)
        out["transfer_at_flag"] = bootstrap_transfer(teacher_scores, base, pre.scores,
                                                     seed=seed)
    return out
