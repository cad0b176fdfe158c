"""A campaign's simulated clock: what lets a campaign span days in seconds, and a defended cell
give the same records on every run.

Against a reference endpoint on a simulated clock (:mod:`extractbench.serving.pipeline`), each
request carries its client's simulated time, and the endpoint's rate limits, quotas and
detector windows count on it. The clock here is the attacker's:

- each key has its own time, from 0 at the campaign's start;
- a key's requests go one at a time in the order the attack asked for them (a FIFO lane per
  key), so the endpoint sees every key's stream in the same order with the same times on every
  run; in simulated time a key still has ``lanes`` requests in flight, each taking
  ``request_s``: a request moves the key's time on by ``request_s / lanes``;
- a wait the endpoint asks for (a 429's ``retry-after``, a backoff) moves the key's time on
  instead of sleeping; a quota's ``retry-after`` (until its window resets) is waited out too
  when it is at most ``max_wait_s``: a patient attacker waits a day for a daily quota.

Benign users keep a simulated time of their own and follow the attacker's
(:func:`extractbench.campaign.benign.run_benign` with ``follow``): a user sends while its time
is before the attacker's, and no more requests than the attacker's busiest key. Both only grow,
so a user that runs beside the attack sends exactly what it would send after it.

``serial=False`` (an endpoint without defenses: no per-key state to keep in order) lets a
key's requests go concurrently; the times still add up to the same ``elapsed``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from extractbench.logs.harvest import ErrorType

__all__ = ["SimClock"]

QUOTA_SLACK_S = 0.001
"""A quota's wait is its ``retry-after`` and this much more, so the window has reset."""


@dataclass
class SimClock:
    """Per-key simulated time of one campaign (see the module docstring)."""

    request_s: float = 1.0
    """Simulated seconds one request takes."""
    lanes: int = 1
    """Requests one key has in flight at once, in simulated time."""
    max_wait_s: float = 7 * 86400.0
    """The longest quota reset the attacker waits out (longer: the key is given up)."""
    serial: bool = True
    """One request at a time per key, in asking order (what makes a defended cell
    reproducible); ``False`` for an endpoint that keeps no per-key state."""
    _at: dict[str, float] = field(default_factory=dict)
    _sent: dict[str, int] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _tick: asyncio.Event = field(default_factory=asyncio.Event)
    finished: bool = False
    """The campaign is over: ``elapsed`` and ``busiest`` are final."""

    def __post_init__(self) -> None:
        if not self.request_s > 0 or self.lanes < 1 or not self.max_wait_s >= 0:
            raise ValueError("SimClock: request_s > 0, lanes >= 1 and max_wait_s >= 0")

    def now(self, key_id: str) -> float:
        """The key's simulated time: when its next request goes."""
        return self._at.get(key_id, 0.0)

    def sent(self, key_id: str) -> None:
        """A request went: the key's time moves on by one request's share of a lane."""
        self._at[key_id] = self.now(key_id) + self.request_s / self.lanes
        self._sent[key_id] = self._sent.get(key_id, 0) + 1
        self._progress()

    def wait(self, key_id: str, seconds: float) -> None:
        """The key waits ``seconds`` of simulated time (no wall-clock time passes)."""
        self._at[key_id] = self.now(key_id) + max(0.0, seconds)
        self._progress()

    def finish(self) -> None:
        """The campaign is over (wakes everyone following it)."""
        self.finished = True
        self._progress()

    def progressed(self) -> asyncio.Event:
        """Set at the clock's next move (or at :meth:`finish`)."""
        return self._tick

    def _progress(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    def retry_wait(self, error_type: ErrorType, retry_after: float | None,
                   wait: float | None) -> float | None:
        """The wait before the next attempt: a quota whose reset is at most ``max_wait_s``
        away is waited out; a retried rate limit waits its whole ``retry-after`` (waiting
        costs no wall-clock time, so the attacker does not guess short); anything else keeps
        the retry policy's ``wait``."""
        if retry_after is None or retry_after > self.max_wait_s:
            return wait
        if error_type == "quota":
            return retry_after + QUOTA_SLACK_S
        if error_type == "rate_limit" and wait is not None:
            return max(wait, retry_after)
        return wait

    def lane(self, key_id: str) -> asyncio.Lock:
        """The key's lane: held while one of its requests is sent (FIFO: in asking order).
        Only used when :attr:`serial`."""
        lock = self._locks.get(key_id)
        if lock is None:
            lock = self._locks[key_id] = asyncio.Lock()
        return lock

    def busiest(self) -> int:
        """Requests the busiest key sent (attempts, retries included)."""
        return max(self._sent.values(), default=0)

    @contextlib.asynccontextmanager
    async def turn(self, key_id: str, pace_s: float,
                   slots: asyncio.Semaphore) -> AsyncIterator[None]:
        """Held while one of the key's queries is sent: its lane when :attr:`serial` (in
        asking order), one of the campaign's ``slots``; the key first waits ``pace_s``."""
        async with contextlib.AsyncExitStack() as stack:
            if self.serial:
                await stack.enter_async_context(self.lane(key_id))
            await stack.enter_async_context(slots)
            self.wait(key_id, pace_s)
            yield

    def elapsed(self) -> float:
        """Simulated seconds from the campaign's start to its last key's last request."""
        return max(self._at.values(), default=0.0)
