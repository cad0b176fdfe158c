"""The Oracle: an attack's only view of an endpoint.

Attack code gets an :class:`Oracle` and nothing else: the endpoint client and the API keys are
private to it. Every query goes through :meth:`Oracle.query`, which

- reserves the query's worst case against the budget *before* sending (so the spend cannot
  exceed any limit, however many queries are in flight) and charges the real usage after;
- limits concurrency, paces requests, retries rate limits (429), server errors (5xx), timeouts,
  connection failures and 2xx answers whose body cannot be read (charged: the endpoint served
  them) with seeded exponential backoff, honouring ``retry-after``;
- stops a key at its first 401/403 (the key is *dead*: later queries on it return the same
  error without sending; while a key has not yet been accepted, its requests go one at a time,
  so a wrong key costs exactly one request);
- records every answer and every error in the harvest log;
- refuses a prompt whose content is held out (``forbids``), whichever attack sends it: the
  benchmark's held-out hygiene is enforced here, in one place.

Semantics an attack relies on:

- ``query`` returns :class:`Answer` or :class:`Failure` (``error_type`` says why); endpoint
  errors never raise. When the budget cannot cover a query's worst case, and no query in
  flight could free room, ``query`` logs a ``budget`` error and raises
  :class:`BudgetExhausted`: the signal to stop. ``query_many`` instead returns a ``budget``
  :class:`Failure` for each prompt it could not afford.
- Each attempt that reaches the endpoint is one query: an answer is charged its usage (from
  the endpoint, or a tiktoken estimate flagged ``estimated`` when it reports none); a failed
  attempt with an error status (4xx/5xx/408) is charged one query and no tokens; an answer
  that arrived broken (``invalid_response``: a malformed body, a response or stream cut short)
  was served and billed, with usage nobody can read, so it is charged its worst case (below);
  so is a request that was sent and got no status back (a connection reset or a read timeout
  after it was written: the endpoint may have served it); a connection that was never made is
  free. Each attempt is logged as ``sent`` before it goes out; one the process died with in
  flight is charged its worst case when the harvest is resumed (an ``interrupted`` error), so
  what the endpoint may have billed is never bought twice unawares.
- A query's worst case is one query, ``len(prompt.encode()) + input_overhead_tokens`` input
  tokens (a byte-level tokenizer never makes more tokens than bytes; the overhead grows to the
  largest the endpoint reports) and ``max_tokens`` output tokens. Spend stays within every
  limit as long as the endpoint's counts stay within that bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from extractbench.campaign.attempt import Settler
from extractbench.campaign.keys import KeyRing
from extractbench.campaign.ledger import Ledger
from extractbench.campaign.outcomes import (
    Answer,
    BudgetExhausted,
    Failure,
    OracleStats,
    QueryOutcome,
    Usage,
)
from extractbench.campaign.pacing import Pacer, RateLimits, RetryPolicy
from extractbench.campaign.purse import Purse
from extractbench.campaign.replay import Replayer
from extractbench.campaign.sending import Attempts
from extractbench.campaign.simclock import SimClock
from extractbench.config.budget import Budget, Prices, Remaining, Spent
from extractbench.endpoints.clients import (
    Endpoint,
    EndpointClient,
    QueryRequest,
    make_client,
)
from extractbench.logs.harvest import (
    Entry,
    HarvestLog,
)

__all__ = [
    "Answer",
    "BudgetExhausted",
    "Failure",
    "Oracle",
    "OracleStats",
    "QueryOutcome",
    "RateLimits",
    "RetryPolicy",
    "Segment",
    "Usage",
]


@dataclass(frozen=True)
class Segment:
    """What the harvest log's segment header says produced the queries that follow."""

    run_id: str | None = None
    cell_id: str | None = None
    attack: str | None = None


class Oracle:
    """An attack's budgeted, logged, retrying view of one endpoint. See the module docstring.

    The jobs are its parts': :class:`~extractbench.campaign.keys.KeyRing` (which key, dead
    keys), :class:`~extractbench.campaign.purse.Purse` (the budget),
    :class:`~extractbench.campaign.pacing.Pacer` (rates and backoff) and
    :class:`~extractbench.campaign.ledger.Ledger` (the harvest log),
    :class:`~extractbench.campaign.attempt.Settler` (charging and logging what an attempt
    came back with) and :class:`~extractbench.campaign.replay.Replayer` (a resumed harvest);
    this class runs one query through them.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        keys: Sequence[tuple[str, str]],
        budget: Budget,
        harvest: HarvestLog,
        *,
        prices: Prices | None = None,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        rates: RateLimits | None = None,
        input_overhead_tokens: int = 16,
        on_progress: Callable[[Spent], None] | None = None,
        client: EndpointClient | None = None,
        segment: Segment | None = None,
        replay: bool = True,
        forbids: Callable[[str], str | None] | None = None,
        accounts: bool = False,
        sim: SimClock | None = None,
    ) -> None:
        """``keys`` are ``(key_id, api_key)`` pairs; ``key_id`` is what logs show. An existing
        harvest file is resumed: its spend counts against ``budget`` and indices continue.
        ``input_overhead_tokens`` is added to the prompt's UTF-8 byte count to bound its input
        tokens (it grows to the largest overhead the endpoint reports). With ``replay`` (the
        default) a resumed attack is replayed against the log (see
        :mod:`~extractbench.campaign.replay`); without, every query is new. ``forbids`` maps
        a prompt to the held-out content it asks about (``None``: none); such a prompt is
        refused here, whichever attack sends it: logged as a ``heldout`` error, never sent,
        never charged. With ``accounts`` each key is an attacker's account: it costs the
        prices' ``account_usd``, charged against the budget before the first query (an
        evaluator's or a benign user's key is not). With ``sim`` the campaign runs on that
        simulated clock (:mod:`~extractbench.campaign.simclock`): each request carries its
        key's simulated time, waits move that time on instead of sleeping (client-side
        ``rates`` do not apply), with ``sim.serial`` a key's requests go one at a time in
        asking order, and a query's budget is held when it is asked for: one the budget
        cannot cover then is refused at once instead of waiting for queries in flight."""
        self._keys = KeyRing(keys)
        self.sim = sim
        """The campaign's simulated clock, or ``None`` on the wall clock."""
        if concurrency < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")
        self._pacer = Pacer(retry or RetryPolicy(), rates or RateLimits())
        self.endpoint = endpoint
        self.budget = budget
        self.prices = prices or Prices()
        self._purse = Purse(budget, self.prices, on_progress)
        self._ledger = Ledger(harvest, endpoint, self._keys.secrets)
        self._settle = Settler(self._purse, self._ledger, self._keys)
        self._client = client or make_client(endpoint)
        self._concurrency = concurrency
        self._forbids = forbids
        self._attempts = Attempts(self._keys, self._client, self._pacer, self._purse,
                                  self._ledger, self._settle, sim, input_overhead_tokens)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None

        prior: list[Entry] = list(harvest.entries())
        seg = segment or Segment()
        harvest.start_segment(run_id=seg.run_id, cell_id=seg.cell_id, attack=seg.attack,
                              api=endpoint.api, base_url=endpoint.base_url,
                              model=endpoint.model)
        self._replay, self._next_index = Replayer.resume(prior, replay, self._keys,
                                                         self._purse, self._ledger)
        self.accounts = len(self._keys) if accounts else 0
        """The attacker accounts this campaign pays for (its keys)."""
        self.accounts_usd = self._purse.open_accounts(self.accounts)
        """What they cost, in dollars (inside :meth:`spent`)."""

    # -- public surface -------------------------------------------------------------------

    @property
    def key_ids(self) -> list[str]:
        return self._keys.key_ids

    @property
    def dead(self) -> bool:
        """True when every key has failed authentication: nothing more can be sent."""
        return self._keys.dead

    @property
    def fatal_error(self) -> Failure | None:
        """The first auth/permission/quota failure (e.g. a wrong API key), for the runner."""
        return self._keys.fatal_error

    def spent(self) -> Spent:
        """What the queries so far cost (on a resumed harvest: the queries replayed so far)."""
        return self._purse.spent()

    def remaining(self) -> Remaining:
        """Room left under each limit, as the attack sees it (see :meth:`spent`)."""
        return self._purse.remaining()

    def stats(self) -> OracleStats:
        """The campaign's counts; ``spent`` is everything charged, in every segment."""
        return self._ledger.stats(self._purse.total())

    def note(self, text: str, **data: Any) -> None:
        """Add a free-form note to the harvest log (data must be JSON-serialisable). A resumed
        attack's notes that the log already has are not written twice."""
        if self._replay.replay.seen_note(text, data):
            return
        self._ledger.note(text, **data)

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
        pace_s: float = 0.0,
        logit_bias: dict[int, float] | None = None,
    ) -> QueryOutcome:
        """Send one single-turn prompt. Returns an :class:`Answer` or a :class:`Failure`;
        raises :class:`BudgetExhausted` when the budget cannot cover it. ``key_index`` picks a
        key (default: round-robin over live keys); ``top_logprobs`` implies ``logprobs``.
        ``pace_s``: on a simulated clock, the key waits this many more simulated seconds
        before this query goes (an attack's own pacing; on the wall clock an attack sleeps
        itself, and this is ignored)."""
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        if key_index is not None and not 0 <= key_index < len(self._keys):
            raise ValueError(f"key_index {key_index} out of range (0..{len(self._keys) - 1})")
        self._bind_loop()
        req = QueryRequest(prompt=prompt, max_tokens=max_tokens, temperature=temperature,
                           top_p=top_p, seed=seed, logprobs=logprobs or bool(top_logprobs),
                           top_logprobs=top_logprobs or None, stop=list(stop) if stop else None,
                           logit_bias=dict(logit_bias) if logit_bias else None)
        index = self._next_index
        self._next_index += 1
        step = self._replay.step(index, key_index, req, self._next_index)
        if step.overhead is not None:  # learn the overhead as the live run did
            self._attempts.overhead = max(self._attempts.overhead, step.overhead)
        if step.outcome is not None:
            return step.outcome
        index = step.index
        if step.diverged:
            self._next_index = index + 1
        key = step.key if step.key is not None else self._keys.pick(key_index)
        content = self._forbids(prompt) if self._forbids is not None else None
        if content is not None:
            return self._ledger.held_out(index, prompt, content)
        if key.dead is not None:
            return self._settle.not_sent(index, key, req)
        assert self._sem is not None
        if self.sim is None:
            async with self._sem:
                return await self._attempts.run(index, key, req, step.first_attempt)
        # on a simulated clock the budget goes to queries in the order they were asked for
        held = [self._settle.reserve_now(index, key, req,
                                         len(req.prompt.encode("utf-8")) + self._attempts.overhead)]
        try:
            async with self.sim.turn(key.key_id, pace_s, self._sem):
                return await self._attempts.run(index, key, req, step.first_attempt, held)
        finally:
            for unused in held:  # never sent
                self._purse.release(unused)

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
        self._ledger.harvest.close()

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

    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._sem = asyncio.Semaphore(self._concurrency)
            self._keys.bind()
        elif self._loop is not loop:
            raise RuntimeError("an Oracle serves one event loop; create a new one per loop")
