"""A user task from a JSONL file: bring an existing evaluation set.

One JSON object per line with ``prompt`` and ``answer`` (strings; a number answer is
accepted), optional ``choices`` (a list of strings that contains the answer) and optional
``key`` (a string naming the item's content). Blank lines are skipped.

**Content.** An item's content key is its ``key``, else its prompt as
:func:`~extractbench.tasks.wording.normalise` reads it (case, spacing, punctuation, greetings,
answer-format instructions and the reasoning suffix do not count). Lines with one key are
variants of one content (give paraphrases of one question one key): they share a split;
held-out and benign take one of them, the attack pool all. Splits are assigned by
:func:`~extractbench.tasks.splits.assign`; ``heldout`` and ``benign`` take exactly their size
(in contents), the attack pool takes up to its size from what is left. An identical prompt on
two lines is an error, and so are two prompts that read the same but carry different keys.
:meth:`JsonlTask.content_keys` maps a prompt in any wording that normalises to an item's to
its key: a paraphrase beyond that is only recognised if you list it under the same key.

Scorers: ``exact`` (after normalising case, whitespace, markdown and trailing punctuation),
``numeric`` (the last number in the answer, compared as a number) and ``label`` (the choice,
or known answer, named last in the response).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from extractbench.registry import PluginParams
from extractbench.tasks.answers import final_part, last_label, last_number, norm
from extractbench.tasks.base import TASKS, SplitName, TaskItem
from extractbench.tasks.splits import assign
from extractbench.tasks.wording import normalise

SCORERS = ("exact", "numeric", "label")


def load_items(path: Path, reasoning_suffix: str | None = None) -> list[TaskItem]:
    """Read and check a task file; errors name the file and line. ``reasoning_suffix`` is the
    task's, which a content key read from the prompt ignores."""
    if not path.is_file():
        raise ValueError(f"{path}: no such task file (params.path is relative to the working "
                         "directory)")
    items: list[TaskItem] = []
    first_line: dict[str, int] = {}  # prompt -> line
    reads_as: dict[str, tuple[str, int]] = {}  # normalised prompt -> (key, line)
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                row: Any = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno}); "
                                 "each line must be one JSON object") from None
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected a JSON object with 'prompt' and 'answer'")
            item = _item(row, where, reasoning_suffix)
            if item.prompt in first_line:
                raise ValueError(f"{where}: duplicate prompt (same as line "
                                 f"{first_line[item.prompt]}); remove one so the splits stay "
                                 "disjoint")
            first_line[item.prompt] = n
            text = normalise(item.prompt, (reasoning_suffix,))
            key, first = reads_as.setdefault(text, (item.key, n))
            if key != item.key:
                raise ValueError(f"{where}: the prompt reads the same as line {first}'s (after "
                                 "normalising case, spacing and instructions) but its key "
                                 "differs; give both one key or reword one")
            items.append(item)
    if not items:
        raise ValueError(f"{path}: empty task file (expected one JSON object per line with "
                         "'prompt' and 'answer')")
    return items


def _item(row: dict[str, Any], where: str, reasoning_suffix: str | None) -> TaskItem:
    for field in ("prompt", "answer"):
        if field not in row:
            raise ValueError(f"{where}: missing field {field!r}")
    prompt, answer = row["prompt"], row["answer"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"{where}: field 'prompt' must be a non-empty string")
    if isinstance(answer, bool) or not isinstance(answer, str | int | float):
        raise ValueError(f"{where}: field 'answer' must be a string or a number")
    answer = str(answer)
    choices = row.get("choices")
    if choices is not None:
        if (not isinstance(choices, list) or not choices
                or not all(isinstance(c, str) and c.strip() for c in choices)):
            raise ValueError(f"{where}: field 'choices' must be a non-empty list of strings")
        if answer not in choices:
            raise ValueError(f"{where}: answer {answer!r} is not one of the choices")
    key = row.get("key")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise ValueError(f"{where}: field 'key' must be a non-empty string")
    unknown = sorted(set(row) - {"prompt", "answer", "choices", "key"})
    if unknown:
        raise ValueError(f"{where}: unknown field {unknown[0]!r} (allowed: prompt, answer, "
                         "choices, key)")
    return TaskItem(key=key or normalise(prompt, (reasoning_suffix,)), prompt=prompt,
                    answer=answer, choices=tuple(choices or ()))


class JsonlParams(PluginParams):
    """The parameters of the ``jsonl`` family."""

    path: str = Field(description="the JSONL file with prompt/answer (and optional choices) "
                      "lines, relative to the working directory")
    scorer: Literal["exact", "numeric", "label"] = Field(default="exact", description="how an "
                                                         "answer is compared with the truth")
    max_answer_tokens: int | None = Field(default=None, description="completion length that "
                                          "holds a bare answer (default: the longest answer's "
                                          "bytes + 16)")
    reference_model: str = Field(default="", description="a reference teacher that serves it "
                                 "(default: none)")
    reasoning_suffix: str | None = Field(default=None, description="text that asks for the "
                                         "worked reasoning (default: none)")
    reasoning_max_tokens: int = Field(default=256, description="completion length that holds "
                                      "the reasoning and the answer")


class JsonlTask:
    """Items from a user's JSONL file, scored by ``exact``, ``numeric`` or ``label``."""

    def __init__(self, seed: int, sizes: dict[str, int], path: str, scorer: str = "exact",
                 max_answer_tokens: int | None = None, reference_model: str = "",
                 reasoning_suffix: str | None = None, reasoning_max_tokens: int = 256) -> None:
        if scorer not in SCORERS:
            raise ValueError(f"scorer must be one of {', '.join(SCORERS)} (got {scorer!r})")
        file = Path(path)
        items = load_items(file, reasoning_suffix)
        self.name = f"jsonl:{file.name}"
        self.scorer = scorer
        self.reference_model = reference_model
        self.reasoning_suffix = reasoning_suffix
        longest = max(len(i.answer.encode("utf-8")) for i in items)
        self.max_answer_tokens = max_answer_tokens or longest + 16
        if self.max_answer_tokens < 1:
            raise ValueError(f"max_answer_tokens must be >= 1 (got {max_answer_tokens})")
        self.reasoning_max_tokens = max(reasoning_max_tokens, self.max_answer_tokens)
        self.labels = sorted({*(i.answer for i in items), *(c for i in items for c in i.choices)},
                             key=lambda s: (-len(s), s))
        contents: dict[str, list[TaskItem]] = {}
        for item in items:
            contents.setdefault(item.key, []).append(item)
        self._index = {normalise(i.prompt, (reasoning_suffix,)): i.key for i in items}
        fixed = int(sizes.get("heldout", 0)) + int(sizes.get("benign", 0))
        if fixed > len(contents):
            raise ValueError(f"{file}: heldout + benign ask for {fixed} items but the file has "
                             f"only {len(contents)} distinct contents; lower heldout/benign")
        chunks = assign("jsonl", seed, contents, sizes, str(file), pool_up_to=True)
        self._splits = {s: [i for _, i in c] for s, c in chunks.items()}

    def content_keys(self, prompt: str) -> tuple[str, ...]:
        """The key of the item whose prompt reads the same as ``prompt`` (see the module
        docstring), or nothing."""
        key = self._index.get(normalise(prompt, (self.reasoning_suffix,)))
        return () if key is None else (key,)

    def content_key(self, prompt: str) -> str | None:
        keys = self.content_keys(prompt)
        return keys[0] if keys else None

    def split(self, name: SplitName) -> list[TaskItem]:
        return list(self._splits[name])

    def extract(self, text: str) -> str | None:
        rest = final_part(text)
        if rest is None:
            return None
        if self.scorer == "numeric":
            return last_number(rest)
        if self.scorer == "label":
            found = last_label(rest, self.labels)
            if found is not None:
                return found
        return norm(rest) or None

    def score(self, prediction: str | None, item: TaskItem) -> float:
        if prediction is None:
            return 0.0
        if self.scorer == "numeric":
            want = last_number(item.answer)
            try:
                return float(want is not None and abs(float(prediction) - float(want))
                             <= 1e-9 * max(1.0, abs(float(want))))
            except ValueError:
                return 0.0
        return float(norm(prediction) == norm(item.answer))


@TASKS.register("jsonl", params=JsonlParams)
def make_jsonl(seed: int, sizes: dict[str, int], **params: object) -> JsonlTask:
    """Your own task from a JSONL file of prompts and answers (optional choices)."""
    known = set(JsonlParams.model_fields)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown jsonl parameter {unknown[0]!r} "
                         f"(known: {', '.join(sorted(known))})")
    if "path" not in params:
        raise ValueError("jsonl tasks need params.path: the JSONL file with prompt/answer lines")
    return JsonlTask(seed, sizes, **params)  # type: ignore[arg-type]
