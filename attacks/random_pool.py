"""``random-pool``: the Knockoff Nets / Model Leeching baseline.

Idea: the attacker holds unlabelled inputs from the task's distribution (the ``attack_pool``)
and sends a uniformly random sample of them, without replacement, until the budget binds or
the pool runs out; the student trains on the answers. Models Orekondy et al., *Knockoff Nets*
(CVPR 2019, random strategy) and Birch et al., *Model Leeching* (2023). Random querying is a
strong baseline; every smarter attack must beat it, so it gets no handicap: greedy answers,
full concurrency, every pool prompt usable.

Adapts/stops: stops when the budget binds, when every key is refused, or after ``patience``
rounds without a single answer (blocked); rate limits are absorbed by the oracle's backoff.

Parameters: ``temperature`` (default 0: the teacher's best answer), ``max_tokens`` (default:
the task's answer length), ``batch`` (prompts in flight per round, default 32),
``patience`` (rounds without an answer before giving up, default 3).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from extractbench.registry import PluginParams

from .base import ATTACKS, AttackContext, Temperature, Tracker


class RandomPoolParams(PluginParams):
    """The parameters of ``random-pool``."""

    temperature: Temperature = Field(
        default=0.0, ge=0, le=2, description="sampling temperature, 0 or 0.01..2 (0: the "
        "teacher's best answer)")
    max_tokens: int | None = Field(
        default=None, ge=1, le=4096, description="output tokens per answer, 1..4096 (default: "
        "the task's answer length)")
    batch: int = Field(default=32, ge=1, le=1024, description="prompts in flight per round "
                       "(>= 1)")
    patience: int = Field(default=3, ge=1, le=1000, description="rounds without an answer "
                          "before giving up, 1..1000")


class RandomPool:
    """Random sample of the attack pool, without replacement."""

    def __init__(self, temperature: float = 0.0, max_tokens: int | None = None,
                 batch: int = 32, patience: int = 3) -> None:
        if not 0.0 <= temperature <= 2.0:
            raise ValueError("random-pool: temperature must be in [0, 2]")
        if batch < 1:
            raise ValueError("random-pool: batch must be at least 1")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError("random-pool: max_tokens must be at least 1")
        self.temperature, self.max_tokens, self.batch = temperature, max_tokens, batch
        self.patience = patience

    async def run(self, ctx: AttackContext) -> str:
        order = ctx.sendable(ctx.pool)
        ctx.rng.shuffle(order)
        max_tokens = self.max_tokens or ctx.max_tokens
        tracker = Tracker(ctx, self.patience)
        for start in range(0, len(order), self.batch):
            chunk = order[start : start + self.batch]
            outcomes = await ctx.oracle.query_many(
                chunk, max_tokens=max_tokens, temperature=self.temperature
            )
            stop = tracker.update(outcomes)
            if stop is not None:
                return stop
        return "attack pool exhausted"


@ATTACKS.register("random-pool", params=RandomPoolParams)
def make_random_pool(**params: Any) -> RandomPool:
    """Random sample of the task's attack pool (Knockoff Nets baseline)."""
    return RandomPool(**params)
