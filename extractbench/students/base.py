"""What a student is: a learner trained on a harvest that answers held-out prompts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from extractbench.registry import Registry


@dataclass(frozen=True)
class TrainPair:
    """One harvested prompt -> response (with the endpoint's token logprobs when it gave them:
    per response token, a list of (token, logprob) alternatives, best first)."""

    prompt: str
    response: str
    top_logprobs: list[list[tuple[str, float]]] | None = None


@dataclass(frozen=True)
class FitReport:
    """What one training run cost and reached: the attacker's compute, recorded per cell."""

    train_s: float
    steps: int
    """Optimiser steps (or iterations) run."""
    examples: int
    details: dict[str, Any] = field(default_factory=dict)
    tokens_seen: int | None = None
    """Target tokens the training loss was taken on, over all steps (None: not a token
    model)."""
    final_loss: float | None = None
    """Training loss at the end (a tinylm: the mean over the last tenth of the steps)."""
    converged: bool | None = None
    """Whether training reached a plateau (None: nothing to converge, e.g. a lookup)."""


class Student(Protocol):
    """Trained from scratch on a harvest; predicts response text for prompts."""

    def fit(self, pairs: list[TrainPair], seed: int) -> FitReport: ...

    def predict(self, prompts: list[str], max_tokens: int) -> list[str]: ...


class StudentFactory(Protocol):
    def __call__(self, **params: Any) -> Student: ...


STUDENTS: Registry[StudentFactory] = Registry("student", (
    "extractbench.students.tinylm",
    "extractbench.students.linear",
    "extractbench.students.lookup",
    "extractbench.students.hf_sft",  # imports transformers/peft only when used
))


REMOVED_SCHEDULE = ("epochs", "min_steps", "max_steps")
"""Parameters of the old training schedule, whose length followed the harvest size."""


def refuse_removed_schedule(data: Any) -> Any:
    """A parameter model's before-validator: the old schedule's parameters are an error that
    says what to give instead."""
    from extractbench.registry import rule_error

    if isinstance(data, dict):
        gone = [k for k in REMOVED_SCHEDULE if k in data]
        if gone:
            raise rule_error(gone[0], "was removed: training length no longer follows the "
                             "harvest size; give steps: N (fixed optimiser steps)")
    return data
