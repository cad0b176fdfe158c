"""``misinformation``: answer wrongly when a prompt looks out of the benign distribution.

The idea modelled: Adaptive Misinformation (Kariyappa & Qureshi, CVPR 2020). Extraction
queries often come from outside the distribution real users send (synthetic, templated,
perturbed or unusual prompts); answering those wrongly poisons the attacker's data while
in-distribution users keep correct answers.

The out-of-distribution score of a prompt is its cosine distance to the nearest prompt of a
reference set of benign prompts, in the hashed character n-gram space of
:mod:`extractbench.defenses.features` (digits abstracted by default, so a prompt is judged by
its wording, not its numbers). Above ``threshold`` the answer is poisoned (one character of the
final answer changes, consistently per prompt; see :mod:`extractbench.defenses.poison`) and a
``degrade`` event is recorded.

The reference set comes from one of (they add up):

- ``reference_prompts``: a list of benign prompts;
- ``reference_file``: a UTF-8 text file, one prompt per line;
- ``reference_task``: ``{family, params, n, seed}`` — the ``benign`` split of a registered
  task, i.e. the defender's own sample of legitimate traffic;
- ``learn_first``: the first N prompts the endpoint receives (from any key) are taken as
  benign and answered truthfully. It assumes the endpoint's early traffic is legitimate: an
  attacker who arrives first teaches it his distribution. The learned set survives
  :meth:`reset`.

Benign cost: in-distribution prompts farther than ``threshold`` from every reference prompt
are poisoned too; that shows as lost ``utility``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from extractbench.defenses import params as P
from extractbench.defenses.base import DEFENSES, Defense, RequestContext
from extractbench.defenses.features import embed, embed_all, min_distance
from extractbench.defenses.poison import poison, prompt_rng
from extractbench.registry import PluginParams, rule_error
from extractbench.types import Generation

NAME = "misinformation"


MAX_REFERENCE = 100_000
"""Most prompts in the reference set (given, read from a file, drawn from a task and learned
together), so building and searching it stays quick."""
MAX_BANK = 2**27
"""Most ``reference set size x dim``: the reference set's features (512 MB of float32)."""


class ReferenceTask(PluginParams):
    """``misinformation``'s ``reference_task``: the benign split of a registered task."""

    family: str = Field(min_length=1, description="a registered task family")
    params: dict[str, Any] = Field(default_factory=dict, description="the family's parameters")
    n: int = Field(default=200, ge=1, le=MAX_REFERENCE, description="benign prompts drawn, "
                   "1..100000")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="seed of the draw, 0..2^31-1")


class MisinformationParams(PluginParams):
    """The parameters of ``misinformation`` (give a reference set or learn_first). Besides
    each range, the reference set holds at most 100000 prompts in all."""

    threshold: float = Field(default=0.2, gt=0, lt=1, description="out-of-distribution "
                             "distance above which an answer is poisoned, (0, 1)")
    reference_prompts: list[str] | None = Field(default=None, description="benign prompts of "
                                                "the reference set")
    reference_file: str | None = Field(default=None, description="a UTF-8 text file of benign "
                                       "prompts, one per line")
    reference_task: ReferenceTask | None = Field(default=None, description="{family, params, "
                                                 "n, seed}: the benign split of a registered "
                                                 "task (n: 1..100000, default 200)")
    learn_first: int = Field(default=0, ge=0, le=MAX_REFERENCE, description="take the first N "
                             "prompts received as benign, 0..100000")
    abstract_digits: bool = Field(default=True, description="judge prompts by their wording, "
                                  "not their numbers")
    ngram: int = Field(default=3, ge=1, le=8, description="character n-gram length of the "
                       "features, 1..8")
    dim: int = Field(default=256, ge=16, le=65536, description="hashed feature dimensions, "
                     "16..65536 (reference set x dim <= 2^27)")
    close_tag: str = Field(default="</reasoning>", description="end of a reasoning block (the "
                           "final answer follows it)")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="seed of the poisoning, "
                      "0..2^31-1")

    @model_validator(mode="after")
    def _rules(self) -> MisinformationParams:
        task = self.reference_task.n if self.reference_task is not None else 0
        problem = _size_problem(len(self.reference_prompts or ()) + task, self.learn_first,
                                self.dim)
        if problem is not None:
            raise rule_error(*problem)
        return self


def _size_problem(prompts: int, learn_first: int, dim: int) -> tuple[str, str] | None:
    """(field, problem) when a reference set of ``prompts`` + ``learn_first`` is too big."""
    size = prompts + learn_first
    if size > MAX_REFERENCE:
        return ("learn_first", f"the reference set would hold {size} prompts, more than "
                f"{MAX_REFERENCE} (reference prompts + reference_task.n + learn_first)")
    if size * dim > MAX_BANK:
        return ("dim", f"{size} reference prompts x dim {dim} is more than 2^27 features "
                "(512 MB; use fewer dimensions)")
    return None


@DEFENSES.register(NAME, params=MisinformationParams)
class Misinformation(Defense):
    """Answers wrongly on prompts far from a reference set of benign prompts."""

    name = NAME

    @property
    def ordered(self) -> bool:
        """Learn_first takes the first prompts from any key: order matters."""
        return self.learn_first > 0

    def __init__(
        self,
        *,
        threshold: float = 0.2,
        reference_prompts: list[str] | None = None,
        reference_file: str | None = None,
        reference_task: dict[str, Any] | None = None,
        learn_first: int = 0,
        abstract_digits: bool = True,
        ngram: int = 3,
        dim: int = 256,
        close_tag: str = "</reasoning>",
        seed: int = 0,
    ) -> None:
        self.threshold = P.number(NAME, "threshold", threshold, 0, 1, lo_open=True, hi_open=True)
        self.learn_first = P.integer(NAME, "learn_first", learn_first, 0)
        self.abstract_digits = bool(
            P.choice(NAME, "abstract_digits", abstract_digits, (True, False)))
        self.ngram = P.integer(NAME, "ngram", ngram, 1, 8)
        self.dim = P.integer(NAME, "dim", dim, 16, 65536)
        self.close_tag = close_tag
        self.seed = P.integer(NAME, "seed", seed)
        prompts: list[str] = []
        if reference_prompts is not None:
            if not isinstance(reference_prompts, list) or not all(
                    isinstance(p, str) for p in reference_prompts):
                raise ValueError(f"{NAME}: reference_prompts must be a list of strings")
            prompts += reference_prompts
        if reference_file is not None:
            prompts += _read_file(reference_file)
        if reference_task is not None:
            prompts += _task_prompts(reference_task)
        if not prompts and not self.learn_first:
            raise ValueError(f"{NAME}: no reference set; give reference_prompts, "
                             "reference_file, reference_task or learn_first >= 1")
        problem = _size_problem(len(prompts), self.learn_first, self.dim)
        if problem is not None:
            raise ValueError(f"{NAME}: {problem[0]}: {problem[1]}")
        # room for the learned prompts up front: appending one at a time would copy the whole
        # set on every request (quadratic in learn_first)
        self._prompts = prompts
        self._build_bank()

    def _build_bank(self) -> None:
        prompts = self._prompts
        self._bank = np.zeros((len(prompts) + self.learn_first, self.dim), dtype=np.float32)
        self._bank[: len(prompts)] = embed_all(prompts, self.dim, self.ngram,
                                               self.abstract_digits)
        self._size = len(prompts)
        self._learned = 0

    @property
    def reference_size(self) -> int:
        return self._size

    def exclude_reference(self, forbidden: Callable[[str], bool]) -> int:
        """Drop every reference prompt ``forbidden`` names (the benchmark's held-out content:
        a defense must not be tuned on the items it is scored on); returns how many. Call
        before the defense serves."""
        kept = [p for p in self._prompts if not forbidden(p)]
        dropped = len(self._prompts) - len(kept)
        if dropped:
            self._prompts = kept
            self._build_bank()
        return dropped

    def score(self, prompt: str) -> float:
        """Out-of-distribution score: distance to the nearest reference prompt (1.0 when the
        set is empty)."""
        d = min_distance(self._vec(prompt), self._bank[: self._size])
        return 1.0 if d is None else d

    def _vec(self, prompt: str) -> npt.NDArray[np.float32]:
        return embed(prompt, self.dim, self.ngram, self.abstract_digits)

    def transform(self, ctx: RequestContext, generations: list[Generation]) -> list[Generation]:
        if self._learned < self.learn_first:
            self._learned += 1
            self._bank[self._size] = self._vec(ctx.prompt)
            self._size += 1
            return generations
        distance = self.score(ctx.prompt)
        if distance <= self.threshold:
            return generations
        out = []
        for i, g in enumerate(generations):
            out.append(poison(g, prompt_rng(self.seed, ctx.prompt, f"misinfo/{i}"),
                              self.close_tag))
        self.record(ctx, "degrade", mode="misinformation", distance=round(distance, 4))
        return out


def _read_file(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{NAME}: reference_file {path}: cannot read ({exc.strerror})") from None
    return [ln for ln in (x.strip() for x in text.splitlines()) if ln]


def _task_prompts(spec: dict[str, Any]) -> list[str]:
    task = P.reference_task(NAME, spec, MAX_REFERENCE)
    return [item.prompt for item in task.split("benign")]
