"""The Oracle: an attack's only view of an endpoint.

Attack code gets an :class:`Oracle` and nothing else: the endpoint client and the API keys are
private to it. Every query goes through :meth:`Oracle.query`, which

- reserves the query's worst case against the budget *before* sending (so the spend cannot
  exceed any limit, however many queries are in flight) and charges the real usage after;
- limits concurrency, paces requests, retries rate limits (429), server errors (5xx), timeouts
  and connection failures with seeded exponential backoff, honouring ``retry-after``;
- stops a key at its first 401/403 (the key is *dead*: later queries on it return the same
  error without sending; while a key has not yet been accepted, its requests go one at a time,
  so a wrong key costs exactly one request);
- records every answer and every error in the harvest log.

Semantics an attack relies on:

- ``query`` returns :class:`Answer` or :class:`Failure` (``error_type`` says why); endpoint
  errors never raise. When the budget cannot cover a query's worst case, and no query in
  flight could free room, ``query`` logs a ``budget`` error and raises
  :class:`BudgetExhausted`: the signal to stop. ``query_many`` instead returns a ``budget``
  :class:`Failure` for each prompt it could not afford.
- Each attempt that reaches the endpoint is one query: an answer is charged its usage (from
  the endpoint, or a tiktoken estimate flagged ``estimated`` when it reports none); a failed
  attempt (4xx/5xx/timeout) is charged one query and no tokens; a connection failure is free.
- A query's worst case is one query, ``len(prompt.encode()) + input_overhead_tokens`` input
  tokens (a byte-level tokenizer never makes more tokens than bytes; the overhead grows to the
  largest the endpoint reports) and ``max_tokens`` output tokens. Spend stays within every
  limit as long as the endpoint's counts stay within that bound.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from extractbench.config.budget import (
    Budget,
    BudgetMeter,
    LimitName,
    Prices,
    Remaining,
    Reservation,
    Spent,
)
from extractbench.endpoints.clients import (
    Completion,
    Endpoint,
    EndpointClient,
    EndpointError,
    QueryRequest,
    make_client,
    scrub,
)
from extractbench.endpoints.tokens import estimate_tokens
from extractbench.logs.harvest import (
    ErrorEntry,
    ErrorType,
    HarvestLog,
    RequestParams,
    RequestRecord,
    ResponseEntry,
    ResponseRecord,
    TokenLogprob,
    UsageRecord,
    spent_in,
)
from extractbench.tasks.base import prompt_hash

__all__ = [
    "Answer",
    "BudgetExhausted",
    "Failure",
    "Oracle",
    "OracleStats",
    "QueryOutcome",
    "Usage",
]

RETRYABLE: frozenset[ErrorType] = frozenset({"rate_limit", "server", "timeout", "connection"})
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
    (``attempts == 0``: dead key or budget)."""

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


@dataclass
class _Key:
    key_id: str
    api_key: str = field(repr=False)
    verified: bool = False  # the endpoint has accepted this key once
    dead: Failure | None = None  # the auth/permission failure that killed it
    probe: asyncio.Lock | None = None


class _KeyDead(Exception):
    pass


class Oracle:
    """An attack's budgeted, logged, retrying view of one endpoint. See the module docstring."""

    def __init__(
        self,
        endpoint: Endpoint,
        keys: Sequence[tuple[str, str]],
        budget: Budget,
        harvest: HarvestLog,
        *,
        prices: Prices | None = None,
        concurrency: int = 8,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        seed: int = 0,
        input_overhead_tokens: int = 16,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        on_progress: Callable[[Spent], None] | None = None,
        client: EndpointClient | None = None,
        run_id: str | None = None,
        cell_id: str | None = None,
        attack: str | None = None,
    ) -> None:
        """``keys`` are ``(key_id, api_key)`` pairs; ``key_id`` is what logs show. An existing
        harvest file is resumed: its spend counts against ``budget`` and indices continue.
        ``input_overhead_tokens`` is added to the prompt's UTF-8 byte count to bound its input
        tokens (it grows to the largest overhead the endpoint reports)."""
        if not keys:
            raise ValueError("an Oracle needs at least one (key_id, api_key)")
        if len({k for k, _ in keys}) != len(keys):
            raise ValueError("key ids must be unique")
        if concurrency < 1 or max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")
        self.endpoint = endpoint
        self.budget = budget
        self.prices = prices or Prices()
        self.on_progress = on_progress
        self._client = client or make_client(endpoint)
        self._keys = [_Key(key_id, api_key) for key_id, api_key in keys]
        self._secrets = [api_key for _, api_key in keys]
        self._meter = BudgetMeter(budget, self.prices)
        self._harvest = harvest
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._rng = random.Random(seed)
        self._overhead = input_overhead_tokens
        self._rpm = requests_per_minute
        self._tpm = tokens_per_minute
        self._next_request_at = 0.0
        self._next_tokens_at = 0.0
        self._pause_until = 0.0
        self._rr = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None
        self._budget_waiters: list[asyncio.Future[None]] = []
        self._errors: Counter[str] = Counter()
        self._answers = 0
        self._retries = 0
        self._waited = 0.0
        self.fatal_error: Failure | None = None
        """The first auth/permission/quota failure (e.g. a wrong API key), for the runner."""

        prior = harvest.entries()
        self._meter.restore(spent_in(prior))
        indices = [e.index for e in prior if isinstance(e, ResponseEntry | ErrorEntry)]
        self._next_index = max(indices, default=-1) + 1
        harvest.start_segment(
            run_id=run_id,
            cell_id=cell_id,
            attack=attack,
            api=endpoint.api,
            base_url=endpoint.base_url,
            model=endpoint.model,
        )

    # -- public surface -------------------------------------------------------------------

    @property
    def key_ids(self) -> list[str]:
        return [k.key_id for k in self._keys]

    @property
    def dead(self) -> bool:
        """True when every key has failed authentication: nothing more can be sent."""
        return all(k.dead is not None for k in self._keys)

    def spent(self) -> Spent:
        return self._meter.spent()

    def remaining(self) -> Remaining:
        return self._meter.remaining()

    def stats(self) -> OracleStats:
        return OracleStats(
            spent=self._meter.spent(),
            answers=self._answers,
            errors=dict(self._errors),
            retries=self._retries,
            waited_s=self._waited,
        )

    def note(self, text: str, **data: Any) -> None:
        """Add a free-form note to the harvest log (data must be JSON-serialisable)."""
        self._harvest.note(text, **data)

    async def query(
        self,
        prompt: str,
        *,
        key_index: int | None = None,
        max_tokens: int = 32,
        temperature: float = 0.0,
        top_p: float | None = None,
        seed: int | None = None,
        logprobs: bool = False,
        top_logprobs: int | None = None,
        stop: list[str] | None = None,
    ) -> QueryOutcome:
        """Send one single-turn prompt. Returns an :class:`Answer` or a :class:`Failure`;
        raises :class:`BudgetExhausted` when the budget cannot cover it. ``key_index`` picks a
        key (default: round-robin over live keys); ``top_logprobs`` implies ``logprobs``."""
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        if key_index is not None and not 0 <= key_index < len(self._keys):
            raise ValueError(f"key_index {key_index} out of range (0..{len(self._keys) - 1})")
        self._bind_loop()
        req = QueryRequest(
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            logprobs=logprobs or bool(top_logprobs),
            top_logprobs=top_logprobs or None,
            stop=list(stop) if stop else None,
        )
        index = self._next_index
        self._next_index += 1
        key = self._pick_key(key_index)
        if key.dead is not None:
            return self._not_sent(index, key, req)
        assert self._sem is not None
        async with self._sem:
            return await self._run(index, key, req)

    async def query_many(self, prompts: Iterable[str], **kw: Any) -> list[QueryOutcome]:
        """:meth:`query` for each prompt, concurrently; prompts the budget cannot cover get a
        ``budget`` :class:`Failure` instead of raising. Order follows ``prompts``."""

        async def one(prompt: str) -> QueryOutcome:
            try:
                return await self.query(prompt, **kw)
            except BudgetExhausted as e:
                assert e.failure is not None
                return e.failure

        return list(await asyncio.gather(*(one(p) for p in prompts)))

    async def aclose(self) -> None:
        """Close the endpoint clients and the harvest file."""
        await self._client.aclose()
        self._harvest.close()

    async def __aenter__(self) -> Oracle:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        ep = self.endpoint
        return f"Oracle({ep.api} {ep.base_url} {ep.model}, keys={self.key_ids})"

    # -- one query --------------------------------------------------------------------------

    async def _run(self, index: int, key: _Key, req: QueryRequest) -> QueryOutcome:
        nbytes = len(req.prompt.encode("utf-8"))
        attempt = 0
        while True:
            attempt += 1
            await self._wait_pause()
            await self._pace(nbytes + self._overhead + req.max_tokens)
            if key.dead is not None:
                return self._not_sent(index, key, req)
            reservation = await self._reserve(index, key, req, nbytes + self._overhead)
            if key.dead is not None:  # killed while this query waited for budget
                self._release(reservation)
                return self._not_sent(index, key, req)
            started = time.monotonic()
            try:
                completion = await self._send(key, req)
            except _KeyDead:
                self._release(reservation)
                return self._not_sent(index, key, req)
            except EndpointError as e:
                charged = e.error_type != "connection"
                if charged:
                    self._settle(reservation, 0, 0)
                else:
                    self._release(reservation)
                failure = Failure(
                    index=index,
                    key_id=key.key_id,
                    prompt=req.prompt,
                    error_type=e.error_type,
                    message=scrub(e.message, self._secrets),
                    status=e.status,
                    attempts=attempt,
                )
                retry = e.error_type in RETRYABLE and attempt < self._max_attempts
                wait = self._backoff(attempt, e.retry_after) if retry else None
                self._log_error(failure, retry_after=e.retry_after, wait_s=wait, charged=charged)
                if e.error_type in FATAL:
                    self._kill(key, failure)
                if wait is None:
                    return failure
                self._retries += 1
                self._waited += wait
                if e.error_type == "rate_limit":  # everyone waits, not just this query
                    self._pause_until = max(self._pause_until, time.monotonic() + wait)
                await asyncio.sleep(wait)
                continue
            except BaseException:
                self._release(reservation)  # cancelled or a bug: nothing to charge
                raise
            return self._answered(index, key, req, attempt, reservation, completion, started)

    async def _send(self, key: _Key, req: QueryRequest) -> Completion:
        """One request. Until the endpoint has accepted a key once, its requests go one at a
        time, so a wrong key is found with a single request."""
        if key.verified:
            return await self._client.complete(req, key.api_key)
        assert key.probe is not None
        async with key.probe:
            if key.dead is not None:
                raise _KeyDead
            try:
                completion = await self._client.complete(req, key.api_key)
            except EndpointError as e:
                if e.status is not None and e.error_type not in FATAL:
                    key.verified = True
                raise
            key.verified = True
            return completion

    def _answered(
        self,
        index: int,
        key: _Key,
        req: QueryRequest,
        attempt: int,
        reservation: Reservation,
        c: Completion,
        started: float,
    ) -> QueryOutcome:
        latency = time.monotonic() - started
        estimated = c.input_tokens is None or c.output_tokens is None
        in_tok = c.input_tokens if c.input_tokens is not None else estimate_tokens(req.prompt)
        out_tok = c.output_tokens if c.output_tokens is not None else estimate_tokens(c.text)
        if c.input_tokens is not None:  # learn the endpoint's template/system overhead
            self._overhead = max(self._overhead, c.input_tokens - len(req.prompt.encode()))
        cost = self._settle(reservation, in_tok, out_tok)
        usage = UsageRecord(input_tokens=in_tok, output_tokens=out_tok)
        if c.finish_reason in REFUSAL_REASONS:
            failure = Failure(
                index=index,
                key_id=key.key_id,
                prompt=req.prompt,
                error_type="refused",
                message=scrub(c.text, self._secrets) or f"finish_reason={c.finish_reason}",
                attempts=attempt,
            )
            self._log_error(failure, charged=True, usage=usage, cost_usd=cost)
            return failure
        self._answers += 1
        self._harvest.append(
            ResponseEntry(
                index=index,
                key_id=key.key_id,
                request=RequestRecord(
                    prompt=req.prompt,
                    prompt_hash=prompt_hash(req.prompt),
                    api=self.endpoint.api,
                    model=self.endpoint.model,
                    params=RequestParams(
                        temperature=req.temperature,
                        max_tokens=req.max_tokens,
                        top_p=req.top_p,
                        seed=req.seed,
                        stop=req.stop,
                        logprobs=req.logprobs,
                        top_logprobs=req.top_logprobs,
                    ),
                ),
                response=ResponseRecord(
                    text=c.text, finish_reason=c.finish_reason, logprobs=c.logprobs
                ),
                usage=usage,
                tokens_estimated=estimated,
                cost_usd=cost,
                latency_s=latency,
                attempt=attempt,
            )
        )
        return Answer(
            index=index,
            key_id=key.key_id,
            prompt=req.prompt,
            text=c.text,
            finish_reason=c.finish_reason,
            logprobs=c.logprobs,
            usage=Usage(in_tok, out_tok, estimated, cost),
            attempts=attempt,
        )

    # -- keys -------------------------------------------------------------------------------

    def _pick_key(self, key_index: int | None) -> _Key:
        if key_index is not None:
            return self._keys[key_index]
        n = len(self._keys)
        for step in range(n):
            key = self._keys[(self._rr + step) % n]
            if key.dead is None:
                self._rr = (self._rr + step + 1) % n
                return key
        return self._keys[self._rr % n]  # all dead: any one reports the error

    def _kill(self, key: _Key, failure: Failure) -> None:
        if key.dead is None:
            key.dead = failure
        if self.fatal_error is None:
            self.fatal_error = failure

    def _not_sent(self, index: int, key: _Key, req: QueryRequest) -> Failure:
        assert key.dead is not None
        cause = key.dead
        failure = Failure(
            index=index,
            key_id=key.key_id,
            prompt=req.prompt,
            error_type=cause.error_type,
            message=f"not sent: key {key.key_id!r} was rejected earlier ({cause.message})",
            status=cause.status,
        )
        self._log_error(failure, charged=False)
        return failure

    # -- budget -----------------------------------------------------------------------------

    async def _reserve(
        self, index: int, key: _Key, req: QueryRequest, est_in: int
    ) -> Reservation:
        """Hold the worst case; wait while queries in flight may free room; raise when none
        can."""
        while True:
            reservation = self._meter.reserve(est_in, req.max_tokens)
            if reservation is not None:
                return reservation
            limit = self._meter.binding_limit(est_in, req.max_tokens)
            if self._meter.outstanding == 0 and limit is not None:
                exc = BudgetExhausted(limit, self._meter.spent(), self.budget)
                exc.failure = Failure(
                    index=index,
                    key_id=key.key_id,
                    prompt=req.prompt,
                    error_type="budget",
                    message=str(exc),
                )
                self._log_error(exc.failure, charged=False)
                raise exc
            waiter = asyncio.get_running_loop().create_future()
            self._budget_waiters.append(waiter)
            await waiter

    def _settle(self, reservation: Reservation, input_tokens: int, output_tokens: int) -> float:
        cost = self._meter.settle(reservation, input_tokens, output_tokens)
        self._budget_changed()
        if self.on_progress is not None:
            self.on_progress(self._meter.spent())
        return cost

    def _release(self, reservation: Reservation) -> None:
        self._meter.release(reservation)
        self._budget_changed()

    def _budget_changed(self) -> None:
        waiters, self._budget_waiters = self._budget_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- timing -----------------------------------------------------------------------------

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self._backoff_max, retry_after)
        delay = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1))
        return delay * (0.5 + 0.5 * self._rng.random())

    async def _wait_pause(self) -> None:
        delay = self._pause_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _pace(self, worst_tokens: int) -> None:
        """Client-side rate limits: space request starts at the configured rates."""
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

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._sem = asyncio.Semaphore(self._concurrency)
            for key in self._keys:
                key.probe = asyncio.Lock()
        elif self._loop is not loop:
            raise RuntimeError("an Oracle serves one event loop; create a new one per loop")

    # -- logging ----------------------------------------------------------------------------

    def _log_error(
        self,
        f: Failure,
        *,
        charged: bool,
        retry_after: float | None = None,
        wait_s: float | None = None,
        usage: UsageRecord | None = None,
        cost_usd: float = 0.0,
    ) -> None:
        self._errors[f.error_type] += 1
        self._harvest.append(
            ErrorEntry(
                index=f.index,
                key_id=f.key_id,
                prompt_hash=prompt_hash(f.prompt),
                prompt=f.prompt,
                error_type=f.error_type,
                status=f.status,
                message=scrub(f.message, self._secrets),
                retry_after=retry_after,
                attempt=f.attempts,
                wait_s=wait_s,
                charged=charged,
                usage=usage,
                cost_usd=cost_usd,
            )
        )
