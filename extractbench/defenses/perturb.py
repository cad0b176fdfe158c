"""``perturb``: output perturbation within a stated bound on benign accuracy.

The idea modelled: make harvested outputs worth less as training data while keeping them good
enough for users — the prediction-poisoning family (Orekondy et al. 2020, "Prediction
Poisoning"; Tramèr et al. 2016's rounding) and sampling-temperature increases. Two knobs:

- ``temperature``: requests are sampled at ``max(requested, temperature)``: greedy answers
  become samples, and a student learns the teacher's distribution plus the added noise.
- ``poison_fraction``: that fraction of answers (chosen by the prompt, so a repeated question
  gets the same answer) come back wrong by one character of the final answer, logprobs patched
  to match (see :mod:`extractbench.defenses.poison`).

``scope: all`` perturbs every key; ``scope: flagged`` only keys a detector has flagged (any
``flag`` event in the stack's audit log; put a ``detector`` with ``action: perturb`` before it).

The stated bound (:attr:`Perturb.benign_bound`): with ``scope: all`` poisoning costs benign
users at most ``poison_fraction`` of their accuracy; with ``scope: flagged`` at most
``poison_fraction x FPR``, where FPR is the share of benign keys the detector flags (measured
per cell). A raised temperature has no a-priori bound: its cost is measured as ``utility``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field

from extractbench.defenses import params as P
from extractbench.defenses.base import DEFENSES, Defense, RequestContext
from extractbench.defenses.poison import poison, prompt_rng
from extractbench.registry import PluginParams
from extractbench.types import Generation, SamplingParams

NAME = "perturb"


class PerturbParams(PluginParams):
    """The parameters of ``perturb`` (set temperature or poison_fraction)."""

    temperature: float | None = Field(default=None, ge=0.01, le=2, description="sample at "
                                      "least at this temperature, 0.01..2 (default: as "
                                      "requested)")
    poison_fraction: float = Field(default=0.0, ge=0, le=1, description="share of answers made "
                                   "wrong by one character of the final answer, 0..1")
    scope: Literal["all", "flagged"] = Field(default="all", description="perturb every key, or "
                                             "only keys a detector has flagged")
    close_tag: str = Field(default="</reasoning>", description="end of a reasoning block (the "
                           "final answer follows it)")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="seed of the perturbation, "
                      "0..2^31-1")


@DEFENSES.register(NAME, params=PerturbParams)
class Perturb(Defense):
    """Raised temperature and/or poisoned answers, for every key or only flagged keys."""

    name = NAME

    @property
    def ordered(self) -> bool:
        """Scope all: each request on its own; flagged: by the detector's flags."""
        return self.scope == "flagged"

    def __init__(
        self,
        *,
        temperature: float | None = None,
        poison_fraction: float = 0.0,
        scope: str = "all",
        close_tag: str = "</reasoning>",
        seed: int = 0,
    ) -> None:
        self.temperature = P.optional(NAME, "temperature", temperature, 0, 2, lo_open=True)
        self.poison_fraction = P.number(NAME, "poison_fraction", poison_fraction, 0, 1)
        self.scope = P.choice(NAME, "scope", scope, ("all", "flagged"))
        self.close_tag = close_tag
        self.seed = P.integer(NAME, "seed", seed)
        if self.temperature is None and self.poison_fraction == 0:
            raise ValueError(f"{NAME}: nothing to do; set temperature (0, 2] or "
                             "poison_fraction (0, 1]")

    @property
    def benign_bound(self) -> float | None:
        """Most benign accuracy poisoning can cost (a fraction; multiply by the FPR for
        ``scope: flagged``); ``None`` when a raised temperature makes it unbounded a priori."""
        return None if self.temperature is not None else self.poison_fraction

    def applies(self, ctx: RequestContext) -> bool:
        return self.scope == "all" or self.audit.is_flagged(ctx.key_id)

    def adjust(self, ctx: RequestContext) -> SamplingParams:
        p = ctx.params
        if self.temperature is not None and p.temperature < self.temperature and self.applies(ctx):
            return replace(p, temperature=self.temperature)
        return p

    def transform(self, ctx: RequestContext, generations: list[Generation]) -> list[Generation]:
        if not self.poison_fraction or not self.applies(ctx):
            return generations
        out = []
        for i, g in enumerate(generations):
            rng = prompt_rng(self.seed, ctx.prompt, f"perturb/{i}")
            if rng.random() < self.poison_fraction:
                bad = poison(g, rng, self.close_tag)
                if bad is not g:
                    self.record(ctx, "degrade", mode="poison", sample=i)
                g = bad
            out.append(g)
        return out
