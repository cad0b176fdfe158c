"""What a task family provides: prompts with ground truth in disjoint splits, an answer
extractor robust to vendor formatting, and a scorer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from extractbench.registry import Registry

T = TypeVar("T")
SplitName = Literal["attack_pool", "heldout", "benign"]
SPLITS: tuple[SplitName, ...] = ("attack_pool", "heldout", "benign")


@dataclass(frozen=True)
class TaskItem:
    """One prompt with its ground-truth answer. ``key`` identifies the content (the problem,
    not the wording), so splits can be shown disjoint by content."""

    key: str
    prompt: str
    answer: str
    choices: tuple[str, ...] = ()
    """The allowed answers when the item is multiple-choice (user JSONL tasks)."""


def prompt_hash(prompt: str) -> str:
    """Stable hash of a prompt's text (what the harvest log stores to prove held-out hygiene)."""
    return hashlib.sha256(prompt.strip().encode("utf-8")).hexdigest()[:24]


def take_splits(contents: list[T], sizes: dict[str, int], what: str) -> dict[str, list[T]]:
    """Cut shuffled, distinct ``contents`` into the splits (held-out first, then benign, then
    the attack pool), so no content lands in two splits. ``what`` names the space in the
    error raised when it is too small."""
    need = {s: int(sizes.get(s, 0)) for s in ("heldout", "benign", "attack_pool")}
    bad = [f"{s}={n}" for s, n in need.items() if n < 0]
    if bad:
        raise ValueError(f"split sizes must be >= 0 (got {', '.join(bad)})")
    total = sum(need.values())
    if total > len(contents):
        raise ValueError(
            f"splits ask for {total} items but {what} has only {len(contents)}; lower "
            "attack_pool/heldout/benign or make the task larger"
        )
    out: dict[str, list[T]] = {}
    start = 0
    for split in ("heldout", "benign", "attack_pool"):
        out[split] = contents[start : start + need[split]]
        start += need[split]
    return out


class Task(Protocol):
    """A capability family instance, built from scenario parameters and a seed."""

    name: str
    max_answer_tokens: int
    """Completion length that holds a bare answer."""
    reasoning_max_tokens: int
    """Completion length that holds the worked reasoning and the answer (prompts ending with
    :attr:`reasoning_suffix`); equal to ``max_answer_tokens`` for families without reasoning."""
    reference_model: str
    """The reference teacher that serves this family (a name in ``extractbench list models``;
    empty for user tasks, which have none)."""
    reasoning_suffix: str | None
    """Text an attacker appends to a prompt to ask for the worked reasoning, or ``None``."""

    def split(self, name: SplitName) -> list[TaskItem]: ...

    def extract(self, text: str) -> str | None:
        """The answer in a model's response text, or ``None`` when there is none."""
        ...

    def score(self, prediction: str | None, item: TaskItem) -> float:
        """1.0 for a correct answer, 0.0 otherwise (or a partial score in [0, 1])."""
        ...


class TaskFactory(Protocol):
    def __call__(self, seed: int, sizes: dict[str, int], **params: object) -> Task: ...


TASKS: Registry[TaskFactory] = Registry("task", (
    "extractbench.tasks.arithmetic",
    "extractbench.tasks.cipher",
    "extractbench.tasks.knowledge",
    "extractbench.tasks.classification",
    "extractbench.tasks.jsonl",
))
