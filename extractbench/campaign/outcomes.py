"""What a query gives an attack: an :class:`Answer` or a :class:`Failure`, and the signal that
the budget is spent (:class:`BudgetExhausted`). Plain data, shared by the oracle's parts and
by attack code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from extractbench.config.budget import Budget, LimitName, Spent
from extractbench.logs.harvest import ErrorType, TokenLogprob

__all__ = [
    "FATAL",
    "REFUSAL_REASONS",
    "RETRYABLE",
    "Answer",
    "BudgetExhausted",
    "Failure",
    "OracleStats",
    "QueryOutcome",
    "Usage",
]

RETRYABLE: frozenset[ErrorType] = frozenset(
    {"rate_limit", "server", "timeout", "connection", "invalid_response"})
"""Retried with backoff. ``invalid_response`` (a 2xx the client could not read) is charged and
retried: the endpoint served it."""
FATAL: frozenset[ErrorType] = frozenset({"auth", "permission", "quota"})
REFUSAL_REASONS = frozenset({"content_filter", "refusal"})


@dataclass(frozen=True)
class Usage:
    """What one answer cost."""

    input_tokens: int
    output_tokens: int
    estimated: bool
    cost_usd: float


@dataclass(frozen=True)
class Answer:
    """The endpoint answered (a training pair)."""

    index: int
    key_id: str
    prompt: str
    text: str
    finish_reason: str | None
    logprobs: list[TokenLogprob] | None
    usage: Usage
    attempts: int
    ok: Literal[True] = True


@dataclass(frozen=True)
class Failure:
    """No answer: the last error of a query, a content refusal, or a query not sent
    (``attempts == 0``: dead key, budget, held-out content)."""

    index: int
    key_id: str | None
    prompt: str
    error_type: ErrorType
    message: str
    status: int | None = None
    attempts: int = 0
    ok: Literal[False] = False


QueryOutcome = Answer | Failure


class BudgetExhausted(Exception):
    """The budget cannot cover this query's worst case (``limit`` names the binding limit;
    ``failure`` is the ``budget`` error logged for the query)."""

    def __init__(self, limit: LimitName, spent: Spent, budget: Budget) -> None:
        self.limit, self.spent, self.budget = limit, spent, budget
        self.failure: Failure | None = None
        super().__init__(
            f"budget {budget.label()} exhausted ({limit}): spent {spent.queries} queries, "
            f"{spent.tokens} tokens, ${spent.usd:.4f}"
        )


@dataclass(frozen=True)
class OracleStats:
    spent: Spent
    answers: int
    errors: dict[str, int] = field(default_factory=dict)
    """Error entries by ``error_type`` (every failed attempt, and every query not sent)."""
    retries: int = 0
    waited_s: float = 0.0
    """Total backoff sleep across queries (rate-limit pauses included)."""
