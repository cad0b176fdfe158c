"""What a task family provides: prompts with ground truth in splits disjoint by content, a
content key for every item and for any prompt an attack may send, an answer extractor robust to
vendor formatting, and a scorer. Splits are assigned by :mod:`extractbench.tasks.splits`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Protocol

from extractbench.registry import Registry
from extractbench.tasks.wording import normalise

SplitName = Literal["attack_pool", "heldout", "benign"]
SPLITS: tuple[SplitName, ...] = ("attack_pool", "heldout", "benign")


@dataclass(frozen=True)
class TaskItem:
    """One prompt with its ground-truth answer. ``key`` identifies the content (the problem,
    not the wording): items with one key share a split, and ``Task.content_keys`` maps any
    wording of the prompt back to it."""

    key: str
    prompt: str
    answer: str
    choices: tuple[str, ...] = ()
    """The allowed answers when the item is multiple-choice (user JSONL tasks)."""


def prompt_hash(prompt: str) -> str:
    """Stable hash of a prompt's text (what the harvest log stores to prove held-out hygiene)."""
    return hashlib.sha256(prompt.strip().encode("utf-8")).hexdigest()[:24]


def prompt_index(task: Task) -> dict[str, str]:
    """Every split item's prompt, as :func:`~extractbench.tasks.wording.normalise` reads it,
    to its content key: the default content keys of a task that defines none."""
    suffix = getattr(task, "reasoning_suffix", None)
    return {normalise(i.prompt, (suffix,)): i.key for s in SPLITS for i in task.split(s)}


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

    def content_keys(self, prompt: str) -> tuple[str, ...]:
        """The content keys of the items that ``prompt`` asks about, in any wording an attack
        may send (every template, the reasoning suffix, paraphrases, a greeting), in order of
        appearance; empty when it asks about none. Held-out hygiene checks these.

        Default (a task that subclasses this protocol and does not define it): the key of the
        split item whose prompt reads the same after
        :func:`~extractbench.tasks.wording.normalise` (case, spacing, greetings, answer-format
        instructions and the reasoning suffix do not count)."""
        key = prompt_index(self).get(normalise(prompt, (self.reasoning_suffix,)))
        return () if key is None else (key,)

    def content_key(self, prompt: str) -> str | None:
        """The content key of the (first) item ``prompt`` asks about, or ``None``."""
        keys = self.content_keys(prompt)
        return keys[0] if keys else None


class TaskFactory(Protocol):
    def __call__(self, seed: int, sizes: dict[str, int], **params: object) -> Task: ...


TASKS: Registry[TaskFactory] = Registry("task", (
    "extractbench.tasks.arithmetic",
    "extractbench.tasks.cipher",
    "extractbench.tasks.knowledge",
    "extractbench.tasks.classification",
    "extractbench.tasks.jsonl",
))
