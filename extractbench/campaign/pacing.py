"""When the oracle may send: client-side rate limits (requests and tokens per minute), seeded
exponential backoff between retries (``retry-after`` wins), and the pause every query takes
after a rate limit."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from extractbench.campaign.outcomes import RETRYABLE
from extractbench.logs.harvest import ErrorType

__all__ = ["Pacer", "RateLimits", "RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a failed query is retried (rate limits, 5xx, timeouts and
    connection failures; never auth errors). ``seed`` seeds the backoff jitter."""

    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    seed: int = 0


@dataclass(frozen=True)
class RateLimits:
    """The client-side pace of request starts; ``None`` is unlimited."""

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None


class Pacer:
    def __init__(self, retry: RetryPolicy, rates: RateLimits) -> None:
        if retry.max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")
        self.retry = retry
        self._rpm = rates.requests_per_minute
        self._tpm = rates.tokens_per_minute
        self._rng = random.Random(retry.seed)
        self._next_request_at = 0.0
        self._next_tokens_at = 0.0
        self._pause_until = 0.0

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        cap = self.retry.backoff_max
        if retry_after is not None:
            return min(cap, retry_after)
        delay = min(cap, self.retry.backoff_base * 2 ** (attempt - 1))
        return delay * (0.5 + 0.5 * self._rng.random())

    def retry_wait(self, error_type: ErrorType, attempt: int,
                   retry_after: float | None) -> float | None:
        """Seconds before the next attempt, or ``None`` when the query is not retried (a
        fatal or final error, or the last attempt)."""
        if error_type not in RETRYABLE or attempt >= self.retry.max_attempts:
            return None
        return self.backoff(attempt, retry_after)

    def pause_all(self, wait: float) -> None:
        """A rate limit: every query waits, not just the one that met it."""
        self._pause_until = max(self._pause_until, time.monotonic() + wait)

    async def wait_pause(self) -> None:
        delay = self._pause_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def pace(self, worst_tokens: int) -> None:
        """Space request starts at the configured rates."""
        now = time.monotonic()
        start = now
        if self._rpm is not None:
            start = max(start, self._next_request_at)
            self._next_request_at = start + 60.0 / self._rpm
        if self._tpm is not None:
            start = max(start, self._next_tokens_at)
            self._next_tokens_at = start + 60.0 * worst_tokens / self._tpm
        if start > now:
            await asyncio.sleep(start - now)
