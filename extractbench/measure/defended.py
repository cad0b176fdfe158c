"""The defender's side of one cell on a defended profile: when the attacker was first flagged,
which benign keys were flagged, what the benign users received, and how much a student trained
only on what was harvested before the flag learns (``transfer_at_flag``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from extractbench.attacks.base import train_pairs
from extractbench.campaign.benign import asked
from extractbench.config.scenario import StudentSpec
from extractbench.defenses.base import AuditEvent
from extractbench.logs.harvest import Entry
from extractbench.logs.records import CohortFigures
from extractbench.measure.detection import (
    before_flag,
    flagged_keys,
    harmed_keys,
    read_events,
    summarize,
)
from extractbench.measure.fit import fit_and_score
from extractbench.stats import bootstrap_transfer
from extractbench.tasks import Task

__all__ = ["detection_fields"]


def cohort_figures(events: Sequence[AuditEvent], benign: Any, task: Task,
                   cohort_of: dict[str, str], teacher_score: float,
                   mixed: Mapping[str, tuple[Task, float]] | None = None,
                   ) -> dict[str, CohortFigures]:
    """Per cohort: its keys, what they sent, which were flagged or harmed, what they
    received (``benign``: the run's :class:`~extractbench.campaign.benign.BenignResult`);
    ``mixed``: the other tasks cohorts also ask about, each with the teacher's held-out
    score on it."""
    members: dict[str, list[str]] = {}
    for key_id, name in cohort_of.items():
        members.setdefault(name, []).append(key_id)
    per_user = benign.score_by_key(task, task.split("benign")) if benign is not None else {}
    out = {}
    for name, keys in members.items():
        mine = set(keys)
        sent = [e for e in benign.entries if e.key_id in mine] if benign is not None else []
        received = (benign.score(task, task.split("benign"), keys)
                    if benign is not None else None)
        users = [per_user[k] / teacher_score for k in keys if k in per_user] \
            if teacher_score else []
        out[name] = CohortFigures(
            keys=len(keys), queries=len(sent), answered=sum(e.ok for e in sent),
            flagged_keys=len(flagged_keys(events, keys)),
            harmed_keys=len(harmed_keys(events, keys)), received_score=received,
            prompts=("customer" if any(asked(e.prompt) != e.prompt for e in sent)
                     else "matched") if sent else None,
            utility=received / teacher_score if received is not None and teacher_score
            else None, user_utility=users or None,
            mixed_utility=_mixed_utility(benign, keys, mixed or {}))
    return out


def _mixed_utility(benign: Any, keys: Sequence[str],
                   mixed: Mapping[str, tuple[Task, float]]) -> dict[str, float] | None:
    """Per other task ``keys`` asked about: what they received / the teacher's score."""
    out = {}
    for key, (other, teacher) in mixed.items():
        got = benign.score(other, other.split("benign"), keys, of=key) \
            if benign is not None else None
        if got is not None and teacher:
            out[key] = got / teacher
    return out or None


def detection_fields(audit_path: Path, entries: Sequence[Entry], benign_ids: list[str],
                     benign: Any, task: Task, spec: StudentSpec, seed: int,
                     teacher_scores: list[float], base: list[float],
                     cohort_of: dict[str, str] | None = None,
                     simulated: bool = False,
                     mixed: Mapping[str, tuple[Task, float]] | None = None) -> dict[str, Any]:
    """The record's detection fields (``flagged_at``, ``fpr``, ``benign_score``,
    ``transfer_at_flag``, the per-cohort figures, ...) from the cell's audit log and
    harvest. ``simulated``: the events' times are simulated (``flag_sim_s``)."""
    events = read_events(audit_path)
    summary = summarize(events, entries, benign_ids)
    out: dict[str, Any] = dict(
        flagged_at=summary.flagged_at, flag_reason=summary.flag_reason,
        flag_sim_s=summary.flag_time if simulated else None,
        benign_keys=summary.benign_keys, benign_flagged_keys=summary.benign_flagged_keys,
        fpr=summary.fpr, benign_harmed_keys=summary.benign_harmed_keys,
        harmed_rate=summary.harmed_rate, benign_harms=summary.benign_harms,
        benign_queries=benign.queries if benign is not None else 0,
        benign_score=(benign.score(task, task.split("benign")) if benign is not None
                      else None),
        benign_cohorts=cohort_figures(
            events, benign, task, cohort_of or dict.fromkeys(benign_ids, ""),
            sum(teacher_scores) / len(teacher_scores) if teacher_scores else 0.0, mixed),
    )
    if summary.flagged_at is not None:
        early = train_pairs(before_flag(entries, summary.flagged_at))
        pre = fit_and_score(spec, early, seed, task)
        out["transfer_at_flag"] = bootstrap_transfer(teacher_scores, base, pre.scores,
                                                     seed=seed)
    return out
