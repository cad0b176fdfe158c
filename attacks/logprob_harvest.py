"""``logprob-harvest``: soft labels, not just text.

Idea: every query asks for ``logprobs`` with the ``top_logprobs`` alternatives at each output
token, so each answer carries the teacher's distribution over its top-k next tokens, not only
the sampled one. The student trains with a distillation loss on those soft labels (CE mixed
with KL on the renormalised top-k; see :mod:`extractbench.reference.training`), which carries more
information per query than text ("dark knowledge").

Models: Hinton et al., *Distilling the Knowledge in a Neural Network* (2015) for soft-label
distillation; Carlini et al., *Stealing Part of a Production Language Model* (ICML 2024) and
Finlayson et al., *Logits of API-Protected LLMs Leak Proprietary Information* (2024) for how
much logprob APIs leak; vendors' subsequent restrictions on ``top_logprobs`` and
``logit_bias``.

Adapts: queries go out as in ``random-pool`` (random pool prompts, greedy). If the endpoint
rejects the logprobs parameters (400), the rejected prompts are re-asked without them and the
attack goes on with text; if it answers but returns no logprobs (stripped by a defense, or an
API without them such as Anthropic Messages) for ``probe`` answers in a row, it notes that and
stops asking for them. The student then trains on text, so the attack degrades to random
querying rather than failing.

Parameters: ``top_logprobs`` (alternatives per token, 1..20, default 5), ``probe`` (answers
without logprobs before giving up on them, default 16), ``batch`` (default 32),
``temperature`` (default 0), ``max_tokens`` (default: the task's answer length), ``patience``
(default 3).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from extractbench.registry import PluginParams

from .base import ATTACKS, AttackContext, Temperature, Tracker


class LogprobHarvestParams(PluginParams):
    """The parameters of ``logprob-harvest``."""

    top_logprobs: int = Field(default=5, ge=1, le=20, description="alternatives asked for per "
                              "token, 1..20")
    probe: int = Field(default=16, ge=1, le=100_000, description="answers in a row without "
                       "logprobs before it stops asking for them, 1..100000")
    batch: int = Field(default=32, ge=1, le=1024, description="prompts in flight per round, "
                       "1..1024")
    temperature: Temperature = Field(
        default=0.0, ge=0, le=2, description="sampling temperature, 0 or 0.01..2")
    max_tokens: int | None = Field(
        default=None, ge=1, le=4096, description="output tokens per answer, 1..4096 (default: "
        "the task's answer length)")
    patience: int = Field(default=3, ge=1, le=1000, description="rounds without an answer "
                          "before giving up, 1..1000")


class LogprobHarvest:
    """Random pool prompts with ``top_logprobs`` requested; see the module docstring."""

    def __init__(self, top_logprobs: int = 5, probe: int = 16, batch: int = 32,
                 temperature: float = 0.0, max_tokens: int | None = None,
                 patience: int = 3) -> None:
        if not 1 <= top_logprobs <= 20:
            raise ValueError(f"logprob-harvest: top_logprobs must be in 1..20, got {top_logprobs}")
        if batch < 1 or probe < 1:
            raise ValueError("logprob-harvest: batch and probe must be at least 1")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError("logprob-harvest: max_tokens must be at least 1")
        self.top_logprobs, self.probe, self.batch = top_logprobs, probe, batch
        self.temperature, self.max_tokens, self.patience = temperature, max_tokens, patience

    async def run(self, ctx: AttackContext) -> str:
        order = ctx.sendable(ctx.pool)
        ctx.rng.shuffle(order)
        max_tokens = self.max_tokens or ctx.max_tokens
        tracker = Tracker(ctx, self.patience)
        asking = True
        without = 0  # answers in a row that came back without logprobs
        got = 0
        for start in range(0, len(order), self.batch):
            chunk = order[start : start + self.batch]
            kw: dict[str, Any] = {"max_tokens": max_tokens, "temperature": self.temperature}
            if asking:
                kw["top_logprobs"] = self.top_logprobs
            outcomes = await ctx.oracle.query_many(chunk, **kw)
            if asking:
                rejected = [o for o in outcomes if not o.ok and o.error_type == "bad_request"]
                if rejected and len(rejected) == len(outcomes):
                    asking = False
                    ctx.oracle.note("logprob-harvest: the endpoint rejects logprobs requests; "
                                    "going on with text", example=rejected[0].message[:200])
                    outcomes = await ctx.oracle.query_many(
                        [o.prompt for o in rejected], max_tokens=max_tokens,
                        temperature=self.temperature)
            stop = tracker.update(outcomes)
            if stop is not None:
                return self._done(ctx, stop, got)
            if asking:
                for o in outcomes:
                    if not o.ok:
                        continue
                    if o.logprobs:
                        got += 1
                        without = 0
                    else:
                        without += 1
                if without >= self.probe:
                    asking = False
                    ctx.oracle.note("logprob-harvest: the endpoint returns no logprobs; "
                                    "going on with text", answers_without=without)
        return self._done(ctx, "attack pool exhausted", got)

    @staticmethod
    def _done(ctx: AttackContext, reason: str, got: int) -> str:
        ctx.oracle.note("logprob-harvest: answers with logprobs", count=got)
        return reason


@ATTACKS.register("logprob-harvest", params=LogprobHarvestParams)
def make_logprob_harvest(**params: Any) -> LogprobHarvest:
    """Requests top-k logprobs; the student distils from the soft labels."""
    return LogprobHarvest(**params)
