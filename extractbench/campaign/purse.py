"""The oracle's hold on the budget: a query reserves its worst case before it is sent, so the
spend cannot pass any limit however many queries are in flight; the real usage is charged
after. While queries in flight may free room, a query that does not fit waits for them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from extractbench.campaign.outcomes import BudgetExhausted
from extractbench.config.budget import Budget, BudgetMeter, Prices, Remaining, Reservation, Spent

__all__ = ["Purse"]


class Purse:
    def __init__(self, budget: Budget, prices: Prices,
                 on_progress: Callable[[Spent], None] | None = None) -> None:
        self.budget = budget
        self.prices = prices
        self.on_progress = on_progress
        self._meter = BudgetMeter(budget, prices)
        self._waiters: list[asyncio.Future[None]] = []
        self._hidden = Spent()

    def restore(self, spent: Spent, *, hidden: Spent | None = None) -> None:
        """Count an earlier segment's spend (a resumed harvest) against the budget. ``hidden``
        (part of it) counts against every limit but is not shown by :meth:`spent` and
        :meth:`remaining` until :meth:`shown` says so: the spend of logged queries a
        resumed attack has not replayed yet."""
        self._meter.restore(spent)
        self._hidden = hidden or Spent()

    def open_accounts(self, accounts: int) -> float:
        """Charge ``accounts`` attacker accounts at the prices' ``account_usd``; returns the
        dollars (counted against the ``usd`` limit, shown by :meth:`spent`)."""
        usd = self._meter.open_accounts(accounts)
        if usd and self.on_progress is not None:
            self.on_progress(self.spent())
        return usd

    def shown(self, spent: Spent | None) -> None:
        """Show ``spent`` of the hidden spend (``None``: all of it)."""
        self._hidden = Spent() if spent is None else _minus(self._hidden, spent)

    def total(self) -> Spent:
        """Everything charged, hidden or not."""
        return self._meter.spent()

    def spent(self) -> Spent:
        return _minus(self._meter.spent(), self._hidden)

    def remaining(self) -> Remaining:
        r, h, b = self._meter.remaining(), self._hidden, self.budget
        return Remaining(
            queries=None if r.queries is None else min(b.queries or 0, r.queries + h.queries),
            tokens=None if r.tokens is None else min(b.tokens or 0, r.tokens + h.tokens),
            usd=None if r.usd is None else min(b.usd or 0.0, r.usd + h.usd),
        )

    async def reserve(self, est_in: int, max_tokens: int) -> Reservation:
        """Hold the worst case; wait while queries in flight may free room; raise
        :class:`BudgetExhausted` when none can."""
        while True:
            reservation = self._meter.reserve(est_in, max_tokens)
            if reservation is not None:
                return reservation
            limit = self._meter.binding_limit(est_in, max_tokens)
            if self._meter.outstanding == 0 and limit is not None:
                raise BudgetExhausted(limit, self._meter.spent(), self.budget)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def reserve_now(self, est_in: int, max_tokens: int) -> Reservation:
        """Hold the worst case at once, or raise :class:`BudgetExhausted` without waiting for
        queries in flight (on a simulated clock: queries are granted the budget in the order
        they were asked, whatever order they finish in)."""
        reservation = self._meter.reserve(est_in, max_tokens)
        if reservation is not None:
            return reservation
        limit = self._meter.binding_limit(est_in, max_tokens)
        assert limit is not None  # the meter refused it: some limit binds
        raise BudgetExhausted(limit, self._meter.spent(), self.budget)

    def settle(self, reservation: Reservation, input_tokens: int, output_tokens: int) -> float:
        """Charge the real usage in place of the reservation; returns its cost in USD."""
        cost = self._meter.settle(reservation, input_tokens, output_tokens)
        self._changed()
        if self.on_progress is not None:
            self.on_progress(self.spent())
        return cost

    def settle_failure(self, error_type: str, maybe_served: bool, status: int | None,
                       reservation: Reservation) -> tuple[bool, float, bool]:
        """Charge a failed attempt: ``(charged its worst case, cost, charged at all)``. An
        answer that arrived broken, and a request that was sent but got no status back (a
        reset or a stall after it was written), may have been served and billed: their worst
        case. A request that never left (connection refused, connect timeout) is free. An
        error status is one query and no tokens."""
        sent_no_status = error_type in ("connection", "timeout")
        if error_type == "invalid_response" or (sent_no_status and maybe_served):
            cost = self.settle(reservation, reservation.input_tokens, reservation.output_tokens)
            return True, cost, True
        if sent_no_status and status is None:
            self.release(reservation)
            return False, 0.0, False
        self.settle(reservation, 0, 0)
        return False, 0.0, True

    def release(self, reservation: Reservation) -> None:
        """Give back a reservation that was not used (nothing sent, or a free failure)."""
        self._meter.release(reservation)
        self._changed()

    def _changed(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def _minus(a: Spent, b: Spent) -> Spent:
    return Spent(queries=a.queries - b.queries, input_tokens=a.input_tokens - b.input_tokens,
                 output_tokens=a.output_tokens - b.output_tokens, usd=a.usd - b.usd)
