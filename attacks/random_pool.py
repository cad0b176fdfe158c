"""``random-pool``: the Knockoff Nets / Model Leeching baseline.

The attacker holds unlabelled inputs from the task's distribution (the ``attack_pool``) and
sends a uniformly random sample of them, without replacement, until the budget binds or the
pool runs out. Random querying is a strong baseline; every smarter attack must beat it.

Parameters: ``temperature`` (default 0: the teacher's best answer), ``max_tokens`` (default:
the task's answer length), ``batch`` (prompts in flight per round, default 32).
"""

from __future__ import annotations

from typing import Any

from attacks.base import ATTACKS, AttackContext


class RandomPool:
    """Random sample of the attack pool, without replacement."""

    def __init__(self, temperature: float = 0.0, max_tokens: int | None = None,
                 batch: int = 32) -> None:
        if not 0.0 <= temperature <= 2.0:
            raise ValueError("temperature must be in [0, 2]")
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.temperature, self.max_tokens, self.batch = temperature, max_tokens, batch

    async def run(self, ctx: AttackContext) -> str:
        order = list(ctx.pool)
        ctx.rng.shuffle(order)
        max_tokens = self.max_tokens or ctx.max_tokens
        for start in range(0, len(order), self.batch):
            chunk = order[start : start + self.batch]
            outcomes = await ctx.oracle.query_many(
                chunk, max_tokens=max_tokens, temperature=self.temperature
            )
            if ctx.oracle.dead:
                return "all keys refused (auth)"
            if any(not o.ok and o.error_type == "budget" for o in outcomes):
                return "budget exhausted"
        return "attack pool exhausted"


@ATTACKS.register("random-pool")
def make_random_pool(**params: Any) -> RandomPool:
    """Random sample of the task's attack pool (Knockoff Nets baseline)."""
    return RandomPool(**params)

