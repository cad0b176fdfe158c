"""What an attack may spend, and the meter that charges it.

The meter charges by *worst-case reservation*: before a request is sent, the most it could cost
(one query, its input-token bound plus ``max_tokens`` of output, and the dollars of those) is
reserved against every limit; when the response arrives the real usage is charged and the rest
is freed. So as long as the endpoint's counts stay within the reservation, the spend never
exceeds any limit, however many requests are in flight.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Budget", "BudgetMeter", "LimitName", "Prices", "Remaining", "Reservation", "Spent"]

LimitName = Literal["queries", "tokens", "usd"]

_USD_EPS = 1e-12  # float slack when comparing dollar sums


class Budget(BaseModel):
    """An attack's spending limits; at least one is set, and a request must fit under all.
    Strict (``"5"`` and ``true`` are not numbers) and finite, with upper bounds far above any
    real campaign so a label stays a short file name."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    queries: int | None = Field(default=None, gt=0, le=10**9,
                                description="requests that reach the endpoint")
    tokens: int | None = Field(default=None, gt=0, le=10**12,
                               description="input plus output tokens")
    usd: float | None = Field(default=None, gt=0, le=10**6,
                              description="dollars at the configured prices, accounts included")
    accounts: int | None = Field(
        default=None, gt=0, le=1000,
        description="the most API accounts (keys) the attack may use; each costs the "
        "endpoint's prices.account_usd")

    @model_validator(mode="after")
    def _one_limit_set(self) -> Budget:
        if self.queries is None and self.tokens is None and self.usd is None:
            raise ValueError("a budget needs at least one of queries, tokens, usd")
        return self

    def label(self) -> str:
        """Short name for tables and file names: ``q500``, ``t20000+usd0.50``, ``q1000+a8``."""
        parts: list[str] = []
        if self.queries is not None:
            parts.append(f"q{self.queries}")
        if self.tokens is not None:
            parts.append(f"t{self.tokens}")
        if self.usd is not None:
            usd = f"{self.usd:.2f}" if round(self.usd, 2) == self.usd else f"{self.usd:g}"
            parts.append(f"usd{usd}")
        if self.accounts is not None:
            parts.append(f"a{self.accounts}")
        return "+".join(parts)


class Prices(BaseModel):
    """Endpoint prices in USD per million tokens (zero for the local reference endpoint), and
    what one API account costs an attacker there."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    input_per_mtok: float = Field(default=0.0, ge=0, le=10**6)
    output_per_mtok: float = Field(default=0.0, ge=0, le=10**6)
    account_usd: float = Field(
        default=0.0, ge=0, le=10**4,
        description="dollars an attacker pays for each API account (key) it uses on this "
        "endpoint (sign-up, verification, a bought or stolen account), charged once per key "
        "before the campaign's first query; benign users are not charged")

    def accounts_cost(self, accounts: int) -> float:
        """Dollars for ``accounts`` attacker accounts."""
        return accounts * self.account_usd

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """Dollars for one request with this usage."""
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


@dataclass(frozen=True)
class Spent:
    """What has been charged so far."""

    queries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Remaining:
    """Room left under each limit (``None`` for a limit that is not set); reservations of
    requests in flight are already subtracted."""

    queries: int | None
    tokens: int | None
    usd: float | None


@dataclass(frozen=True)
class Reservation:
    """The worst case of one request, held until it is settled or released."""

    id: int
    input_tokens: int
    output_tokens: int
    usd: float


class BudgetMeter:
    """Charges a :class:`Budget`. Safe to share between threads and asyncio tasks (every method
    is a short critical section under one lock and never awaits)."""

    def __init__(self, budget: Budget, prices: Prices | None = None) -> None:
        self.budget = budget
        self.prices = prices or Prices()
        self._lock = threading.Lock()
        self._spent = Spent()
        self._held: dict[int, Reservation] = {}
        self._next_id = 0

    def restore(self, spent: Spent) -> None:
        """Start from an earlier session's spend (resuming a harvest)."""
        with self._lock:
            self._spent = _add(self._spent, spent)

    def open_accounts(self, accounts: int) -> float:
        """Charge ``accounts`` API accounts at the prices' ``account_usd`` (no query, no
        token); returns the dollars charged. They count against the ``usd`` limit like any
        spend, so a budget they exhaust leaves no query."""
        usd = self.prices.accounts_cost(accounts)
        with self._lock:
            self._spent = _add(self._spent, Spent(0, 0, 0, usd))
        return usd

    def reserve(self, est_input_tokens: int, max_output_tokens: int) -> Reservation | None:
        """Hold the worst case of one request, or return ``None`` when it might exceed a limit."""
        with self._lock:
            if self._binding(est_input_tokens, max_output_tokens) is not None:
                return None
            res = Reservation(
                id=self._next_id,
                input_tokens=est_input_tokens,
                output_tokens=max_output_tokens,
                usd=self.prices.cost(est_input_tokens, max_output_tokens),
            )
            self._next_id += 1
            self._held[res.id] = res
            return res

    def binding_limit(self, est_input_tokens: int, max_output_tokens: int) -> LimitName | None:
        """The first limit a request of this worst case would break now, or ``None``."""
        with self._lock:
            return self._binding(est_input_tokens, max_output_tokens)

    def settle(self, reservation: Reservation, input_tokens: int, output_tokens: int) -> float:
        """Charge a request that reached the endpoint (one query plus its real usage) and free
        the rest of its reservation. Returns the dollars charged."""
        usd = self.prices.cost(input_tokens, output_tokens)
        with self._lock:
            self._pop(reservation)
            self._spent = _add(self._spent, Spent(1, input_tokens, output_tokens, usd))
        return usd

    def release(self, reservation: Reservation) -> None:
        """Free a reservation without charging: the request never reached the endpoint."""
        with self._lock:
            self._pop(reservation)

    def spent(self) -> Spent:
        with self._lock:
            return self._spent

    @property
    def outstanding(self) -> int:
        """Reservations not yet settled or released (requests in flight)."""
        with self._lock:
            return len(self._held)

    def remaining(self) -> Remaining:
        with self._lock:
            q, t, usd = self._committed()
            b = self.budget
            return Remaining(
                queries=None if b.queries is None else max(0, b.queries - q),
                tokens=None if b.tokens is None else max(0, b.tokens - t),
                usd=None if b.usd is None else max(0.0, b.usd - usd),
            )

    def _pop(self, reservation: Reservation) -> None:
        if self._held.pop(reservation.id, None) is None:
            raise ValueError(f"reservation {reservation.id} was already settled or released")

    def _committed(self) -> tuple[int, int, float]:
        s = self._spent
        held = self._held.values()
        return (
            s.queries + len(self._held),
            s.tokens + sum(r.input_tokens + r.output_tokens for r in held),
            s.usd + sum(r.usd for r in held),
        )

    def _binding(self, est_input_tokens: int, max_output_tokens: int) -> LimitName | None:
        q, t, usd = self._committed()
        b = self.budget
        if b.queries is not None and q + 1 > b.queries:
            return "queries"
        if b.tokens is not None and t + est_input_tokens + max_output_tokens > b.tokens:
            return "tokens"
        if b.usd is not None:
            worst = usd + self.prices.cost(est_input_tokens, max_output_tokens)
            if worst > b.usd + _USD_EPS:
                return "usd"
        return None


def _add(a: Spent, b: Spent) -> Spent:
    return Spent(
        queries=a.queries + b.queries,
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        usd=a.usd + b.usd,
    )
