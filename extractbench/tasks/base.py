"""What a task family provides: prompts with ground truth in disjoint splits, an answer
extractor robust to vendor formatting, and a scorer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Protocol

from extractbench.registry import Registry

SplitName = Literal["attack_pool", "heldout", "benign"]
SPLITS: tuple[SplitName, ...] = ("attack_pool", "heldout", "benign")


@dataclass(frozen=True)
class TaskItem:
    """One prompt with its ground-truth answer. ``key`` identifies the content (the problem,
    not the wording), so splits can be shown disjoint by content."""

    key: str
    prompt: str
    answer: str


def prompt_hash(prompt: str) -> str:
    """Stable hash of a prompt's text (what the harvest log stores to prove held-out hygiene)."""
    return hashlib.sha256(prompt.strip().encode("utf-8")).hexdigest()[:24]


class Task(Protocol):
    """A capability family instance, built from scenario parameters and a seed."""

    name: str
    max_answer_tokens: int

    def split(self, name: SplitName) -> list[TaskItem]: ...

    def extract(self, text: str) -> str | None:
        """The answer in a model's response text, or ``None`` when there is none."""
        ...

    def score(self, prediction: str | None, item: TaskItem) -> float:
        """1.0 for a correct answer, 0.0 otherwise (or a partial score in [0, 1])."""
        ...


class TaskFactory(Protocol):
    def __call__(self, seed: int, sizes: dict[str, int], **params: object) -> Task: ...


TASKS: Registry[TaskFactory] = Registry("task", ("extractbench.tasks.arithmetic",))
