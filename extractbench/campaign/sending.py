"""One query's attempts, the Oracle's inner loop: pace (on the wall clock), hold the budget,
send, settle what came back, and wait out a retry (in simulated time on a simulated clock).
:class:`~extractbench.campaign.oracle.Oracle` decides which query goes with which key; this
runs it to its outcome."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from dataclasses import dataclass

from extractbench.campaign.attempt import Settler
from extractbench.campaign.keys import Key, KeyDead, KeyRing
from extractbench.campaign.ledger import Ledger
from extractbench.campaign.outcomes import QueryOutcome
from extractbench.campaign.pacing import Pacer
from extractbench.campaign.purse import Purse
from extractbench.campaign.simclock import SimClock
from extractbench.config.budget import Reservation
from extractbench.endpoints.clients import EndpointClient, EndpointError, QueryRequest
from extractbench.logs.harvest import SentEntry, UsageRecord

__all__ = ["Attempts"]


@dataclass
class Attempts:
    """The parts one query's attempts go through, and what they learn on the way."""

    keys: KeyRing
    client: EndpointClient
    pacer: Pacer
    purse: Purse
    ledger: Ledger
    settle: Settler
    sim: SimClock | None
    overhead: int
    """Input tokens added to a prompt's byte count to bound its input (grows to the largest
    overhead the endpoint reports)."""

    async def run(self, index: int, key: Key, req: QueryRequest, first_attempt: int = 1,
                  held: list[Reservation] | None = None) -> QueryOutcome:
        """Attempt query ``index`` with ``key`` until it is answered, fails for good or its
        key dies (``held``: budget already reserved for it, used first)."""
        nbytes = len(req.prompt.encode("utf-8"))
        attempt = first_attempt - 1
        while True:
            attempt += 1
            sim = self.sim
            if sim is None:
                await self.pacer.wait_pause()
                await self.pacer.pace(nbytes + self.overhead + req.max_tokens)
            if key.dead is not None:
                return self.settle.not_sent(index, key, req)
            if held:
                reservation = held.pop()
            elif sim is not None:  # a retry: queries queued behind it hold budget, never wait
                reservation = self.settle.reserve_now(index, key, req, nbytes + self.overhead)
            else:
                reservation = await self.settle.reserve(index, key, req, nbytes + self.overhead)
            if key.dead is not None:  # killed while this query waited for budget
                self.purse.release(reservation)
                return self.settle.not_sent(index, key, req)
            if sim is not None:  # the key's time moves on as the request goes (asking order)
                req = dataclasses.replace(req, sim_time=sim.now(key.key_id))
                sim.sent(key.key_id)
            started = time.monotonic()
            worst = UsageRecord(input_tokens=reservation.input_tokens,
                                output_tokens=reservation.output_tokens)
            sent: list[SentEntry] = []
            on_send = functools.partial(self.settle.log_sent, sent, index, key.key_id,
                                        req.prompt, attempt, worst, reservation.usd)
            try:
                completion = await self.keys.send(self.client, key, req, on_send)
            except KeyDead:
                self.purse.release(reservation)
                return self.settle.not_sent(index, key, req)
            except EndpointError as e:
                wait = self.pacer.retry_wait(e.error_type, attempt, e.retry_after)
                if sim is not None:
                    wait = sim.retry_wait(e.error_type, e.retry_after, wait)
                failure = self.settle.failed(index, key, req, attempt, reservation, e, wait)
                if wait is None:
                    return failure
                self.ledger.retried(wait)
                if sim is not None:  # the key's simulated time moves on; nobody sleeps
                    sim.wait(key.key_id, wait)
                    continue
                if e.error_type == "rate_limit":  # everyone waits, not just this query
                    self.pacer.pause_all(wait)
                await asyncio.sleep(wait)
                continue
            except BaseException:
                self.settle.cancelled(reservation, sent)
                raise
            if completion.input_tokens is not None:  # learn the template/system overhead
                self.overhead = max(self.overhead,
                                     completion.input_tokens - len(req.prompt.encode()))
            return self.settle.answered(index, key, req, attempt, reservation, completion,
                                         started)
