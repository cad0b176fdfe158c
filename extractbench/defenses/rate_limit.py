"""``rate-limit``: per-key token buckets on requests and tokens, and daily quotas.

The idea modelled: the first thing every vendor does — cap how fast, and how much, one API key
may query. A bucket refills continuously at its per-minute rate up to its burst size; a request
that finds its bucket empty gets a 429 with ``retry-after`` (the seconds until it would fit).
A quota counts requests or tokens per key in a fixed window (a day by default) starting at the
key's first request; once spent, the key gets a 429 with code ``insufficient_quota`` (clients
treat that as final, not as a pause) until the window ends.

Tokens are charged before generation at a worst-case estimate — the prompt's UTF-8 bytes plus
``max_tokens`` per sample — and reconciled with the real usage after it, so a short answer
gives the difference back.

Against distillation it slows and caps *one* key; a campaign spread over many keys (or patient
enough) is not stopped, only made slower or more expensive.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, model_validator

from extractbench.defenses import params as P
from extractbench.defenses.base import DEFENSES, Defense, Rejection, RequestContext
from extractbench.registry import PluginParams, rule_error
from extractbench.types import Generation

NAME = "rate-limit"


@dataclass
class _Bucket:
    level: float
    at: float


@dataclass
class _Window:
    start: float
    requests: int = 0
    tokens: int = 0


class RateLimitParams(PluginParams):
    """The parameters of ``rate-limit`` (set at least one rate or quota; a burst needs its
    rate)."""

    requests_per_minute: float | None = Field(default=None, ge=0.001, le=10**6,
                                              description="request bucket refill rate per "
                                              "key, 0.001..10^6 (default: no request bucket)")
    request_burst: int | None = Field(default=None, ge=1, le=10**9, description="request bucket "
                                      "size, 1..10^9 (default: one minute's worth)")
    tokens_per_minute: float | None = Field(default=None, ge=0.001, le=10**12,
                                            description="token bucket refill rate per key, "
                                            "0.001..10^12 (default: no token bucket)")
    token_burst: int | None = Field(default=None, ge=1, le=10**12, description="token bucket "
                                    "size, 1..10^12 (default: one minute's worth)")
    requests_per_day: int | None = Field(default=None, ge=1, le=10**9, description="request "
                                         "quota per key per day_s window, 1..10^9 (default: "
                                         "none)")
    tokens_per_day: int | None = Field(default=None, ge=1, le=10**12, description="token quota "
                                       "per key per day_s window, 1..10^12 (default: none)")
    day_s: float = Field(default=86400.0, gt=0, le=31_536_000, description="length of the "
                         "quota window in seconds, (0, 31536000] (a year)")

    @model_validator(mode="after")
    def _rules(self) -> RateLimitParams:
        if self.request_burst is not None and self.requests_per_minute is None:
            raise rule_error("request_burst", "needs requests_per_minute")
        if self.token_burst is not None and self.tokens_per_minute is None:
            raise rule_error("token_burst", "needs tokens_per_minute")
        return self


@DEFENSES.register(NAME, params=RateLimitParams)
class RateLimit(Defense):
    """Per-key token buckets on requests and tokens (429 + retry-after) and daily quotas."""

    name = NAME

    def __init__(
        self,
        *,
        requests_per_minute: float | None = None,
        request_burst: int | None = None,
        tokens_per_minute: float | None = None,
        token_burst: int | None = None,
        requests_per_day: int | None = None,
        tokens_per_day: int | None = None,
        day_s: float = 86400.0,
    ) -> None:
        """``*_per_minute``: refill rates (``None``: no bucket); ``*_burst``: bucket sizes
        (default: one minute's worth); ``*_per_day``: quotas per ``day_s``-second window."""
        self.rpm = P.optional(NAME, "requests_per_minute", requests_per_minute, 0, lo_open=True)
        self.tpm = P.optional(NAME, "tokens_per_minute", tokens_per_minute, 0, lo_open=True)
        rb = P.optional(NAME, "request_burst", request_burst, 1, integer=True)
        tb = P.optional(NAME, "token_burst", token_burst, 1, integer=True)
        if rb is not None and self.rpm is None:
            raise ValueError(f"{NAME}: request_burst needs requests_per_minute")
        if tb is not None and self.tpm is None:
            raise ValueError(f"{NAME}: token_burst needs tokens_per_minute")
        self.request_burst = rb if rb is not None else (max(1.0, self.rpm) if self.rpm else None)
        self.token_burst = tb if tb is not None else (max(1.0, self.tpm) if self.tpm else None)
        rpd = P.optional(NAME, "requests_per_day", requests_per_day, 1, integer=True)
        tpd = P.optional(NAME, "tokens_per_day", tokens_per_day, 1, integer=True)
        self.requests_per_day = int(rpd) if rpd is not None else None
        self.tokens_per_day = int(tpd) if tpd is not None else None
        self.day_s = P.number(NAME, "day_s", day_s, 0, lo_open=True)
        if not any(x is not None for x in (self.rpm, self.tpm, self.requests_per_day,
                                           self.tokens_per_day)):
            raise ValueError(f"{NAME}: set at least one of requests_per_minute, "
                             "tokens_per_minute, requests_per_day, tokens_per_day")
        self._requests: dict[str, _Bucket] = {}
        self._tokens: dict[str, _Bucket] = {}
        self._windows: dict[str, _Window] = {}
        self._charged: dict[tuple[str, int], int] = {}

    def reset(self) -> None:
        self._requests.clear()
        self._tokens.clear()
        self._windows.clear()
        self._charged.clear()

    @staticmethod
    def estimate(ctx: RequestContext) -> int:
        """Worst-case tokens of a request: prompt bytes + ``max_tokens`` per sample."""
        return len(ctx.prompt.encode("utf-8")) + ctx.params.max_tokens * max(1, ctx.n)

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        now = self.now(ctx)
        cost = self.estimate(ctx)
        window = self._window(ctx.key_id, now)
        reset_in = window.start + self.day_s - now
        if self.requests_per_day is not None and window.requests >= self.requests_per_day:
            return Rejection.quota_exceeded(
                f"Quota exceeded for key {ctx.key_id}: {self.requests_per_day} requests per "
                f"{_span(self.day_s)}; resets in {reset_in:.0f} s.", retry_after=reset_in)
        if self.tokens_per_day is not None and window.tokens + cost > self.tokens_per_day:
            return Rejection.quota_exceeded(
                f"Quota exceeded for key {ctx.key_id}: {self.tokens_per_day} tokens per "
                f"{_span(self.day_s)} ({window.tokens} used, this request needs up to {cost}); "
                f"resets in {reset_in:.0f} s.", retry_after=reset_in)
        if self.token_burst is not None and cost > self.token_burst:
            return Rejection(400, "invalid_request_error",
                             f"Request too large: up to {cost} tokens, but this key may use at "
                             f"most {self.token_burst:.0f} at once; lower max_tokens.")
        waits: list[tuple[float, str]] = []
        if self.rpm is not None:
            assert self.request_burst is not None
            wait = self._wait(self._requests, ctx.key_id, now, self.rpm, self.request_burst, 1.0)
            waits.append((wait, f"{self.rpm:g} requests per minute"))
        if self.tpm is not None:
            assert self.token_burst is not None
            wait = self._wait(self._tokens, ctx.key_id, now, self.tpm, self.token_burst, cost)
            waits.append((wait, f"{self.tpm:g} tokens per minute"))
        wait, what = max(waits, default=(0.0, ""))
        if wait > 0:
            return Rejection.rate_limited(
                f"Rate limit reached for key {ctx.key_id}: {what}. "
                f"Please retry after {wait:.2f} s.", retry_after=wait)
        if self.rpm is not None:
            self._requests[ctx.key_id].level -= 1.0
        if self.tpm is not None:
            self._tokens[ctx.key_id].level -= cost
        window.requests += 1
        window.tokens += cost
        self._charged[(ctx.key_id, ctx.index)] = cost
        return None

    def transform(self, ctx: RequestContext, generations: list[Generation]) -> list[Generation]:
        """Give back what the estimate over-charged, now that the usage is known."""
        charged = self._charged.pop((ctx.key_id, ctx.index), None)
        if charged is None or not generations:
            return generations
        used = generations[0].prompt_tokens + sum(g.completion_tokens for g in generations)
        refund = max(0, charged - used)
        if refund:
            bucket = self._tokens.get(ctx.key_id)
            if bucket is not None and self.token_burst is not None:
                bucket.level = min(self.token_burst, bucket.level + refund)
            window = self._windows.get(ctx.key_id)
            if window is not None:
                window.tokens = max(0, window.tokens - refund)
        return generations

    def _window(self, key_id: str, now: float) -> _Window:
        w = self._windows.get(key_id)
        if w is None or now - w.start >= self.day_s:
            w = self._windows[key_id] = _Window(start=now)
        return w

    @staticmethod
    def _wait(buckets: dict[str, _Bucket], key_id: str, now: float, per_minute: float,
              burst: float, cost: float) -> float:
        """Seconds until ``cost`` fits in the key's bucket (0 when it fits now)."""
        b = buckets.get(key_id)
        if b is None:
            b = buckets[key_id] = _Bucket(level=burst, at=now)
        rate = per_minute / 60.0
        b.level = min(burst, b.level + (now - b.at) * rate)
        b.at = now
        return 0.0 if b.level >= cost else (cost - b.level) / rate


def _span(seconds: float) -> str:
    return "day" if seconds == 86400 else f"{seconds:g} s"
