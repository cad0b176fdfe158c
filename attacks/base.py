"""What an attack is: a black-box query campaign that acts only through the oracle."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from extractbench.registry import Registry

if TYPE_CHECKING:
    from extractbench.oracle import Oracle


@dataclass
class AttackContext:
    """Everything an attack may use. It sees the task's ``attack_pool`` prompts (never their
    answers, never the held-out split) and spends only through ``oracle``."""

    oracle: Oracle
    pool: list[str]
    task: str
    max_tokens: int
    rng: random.Random
    params: dict[str, Any] = field(default_factory=dict)


class Attack(Protocol):
    """An attack campaign; returns when its budget is spent or it decides to stop."""

    async def run(self, ctx: AttackContext) -> str:
        """Run the campaign; returns a short stop reason for the record."""
        ...


class AttackFactory(Protocol):
    def __call__(self, **params: Any) -> Attack: ...


ATTACKS: Registry[AttackFactory] = Registry("attack", ("attacks.random_pool",))
