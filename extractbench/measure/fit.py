"""Fit a student recipe on training pairs, predict the held-out prompts, extract and score.

Every student the run trains goes through :func:`fit_and_score`: the cell's student, its
no-data baseline, the student trained only on what came before a detection flag, and the
watermark's clean control.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from extractbench.config.scenario import StudentSpec
from extractbench.students import STUDENTS, FitReport, TrainPair
from extractbench.tasks import Task

__all__ = ["Scored", "fit_and_score", "new_student"]


@dataclass
class Scored:
    """A fitted student's held-out outputs: raw predictions, extracted answers, scores."""

    predictions: list[str]
    answers: list[str | None]
    scores: list[float]
    fit: FitReport


def new_student(spec: StudentSpec) -> Any:
    """A fresh, untrained student of the scenario's recipe ``spec``."""
    return STUDENTS.get(spec.name)(**spec.params)


def fit_and_score(spec: StudentSpec, pairs: Sequence[TrainPair], seed: int, task: Task
                  ) -> Scored:
    """Train a fresh student of recipe ``spec`` on ``pairs`` with ``seed`` and score it on the
    task's held-out split."""
    items = task.split("heldout")
    student = new_student(spec)
    fit = student.fit(list(pairs), seed)
    preds = student.predict([i.prompt for i in items], task.max_answer_tokens)
    answers = [task.extract(p) for p in preds]
    scores = [task.score(a, i) for a, i in zip(answers, items, strict=True)]
    return Scored(predictions=preds, answers=answers, scores=scores, fit=fit)
