"""How one attempt is reserved, and its outcome charged and logged: an answer (or a
refusal) is charged its usage, a failed attempt what
:meth:`~extractbench.campaign.purse.Purse.settle_failure` says (one query, or its worst case
when it may have been served), an attempt cancelled in flight its worst case. The
:class:`~extractbench.campaign.oracle.Oracle` decides what to send and whether to retry;
this settles what came back."""

from __future__ import annotations

import time

from extractbench.campaign.keys import Key, KeyRing
from extractbench.campaign.ledger import Ledger
from extractbench.campaign.outcomes import (
    FATAL,
    REFUSAL_REASONS,
    Answer,
    BudgetExhausted,
    Failure,
    QueryOutcome,
    Usage,
)
from extractbench.campaign.purse import Purse
from extractbench.config.budget import Reservation
from extractbench.endpoints.clients import Completion, EndpointError, QueryRequest
from extractbench.endpoints.tokens import estimate_tokens
from extractbench.logs.harvest import SentEntry, UsageRecord

__all__ = ["Settler"]


class Settler:
    """Charges and logs attempts on the oracle's parts: its purse, ledger and key ring."""

    def __init__(self, purse: Purse, ledger: Ledger, keys: KeyRing) -> None:
        self._purse, self._ledger, self._keys = purse, ledger, keys

    async def reserve(self, index: int, key: Key, req: QueryRequest,
                      est_in: int) -> Reservation:
        """Hold the attempt's worst case; when the budget cannot cover it, log a ``budget``
        error and raise :class:`BudgetExhausted` carrying that :class:`Failure`."""
        try:
            return await self._purse.reserve(est_in, req.max_tokens)
        except BudgetExhausted as exc:
            self._refuse(exc, index, key, req)
            raise

    def reserve_now(self, index: int, key: Key, req: QueryRequest,
                    est_in: int) -> Reservation:
        """:meth:`reserve` at once, without waiting for queries in flight."""
        try:
            return self._purse.reserve_now(est_in, req.max_tokens)
        except BudgetExhausted as exc:
            self._refuse(exc, index, key, req)
            raise

    def _refuse(self, exc: BudgetExhausted, index: int, key: Key, req: QueryRequest) -> None:
        exc.failure = Failure(index=index, key_id=key.key_id, prompt=req.prompt,
                              error_type="budget", message=str(exc))
        self._ledger.error(exc.failure, charged=False)

    def answered(self, index: int, key: Key, req: QueryRequest, attempt: int,
                 reservation: Reservation, c: Completion, started: float) -> QueryOutcome:
        """An attempt that came back 2xx: charged its usage (a tiktoken estimate when the
        endpoint reports none); a refusal is a ``refused`` :class:`Failure`, charged too."""
        latency = time.monotonic() - started
        estimated = c.input_tokens is None or c.output_tokens is None
        in_tok = c.input_tokens if c.input_tokens is not None else estimate_tokens(req.prompt)
        out_tok = c.output_tokens if c.output_tokens is not None else estimate_tokens(c.text)
        cost = self._purse.settle(reservation, in_tok, out_tok)
        usage = UsageRecord(input_tokens=in_tok, output_tokens=out_tok)
        if c.finish_reason in REFUSAL_REASONS:
            failure = Failure(index=index, key_id=key.key_id, prompt=req.prompt,
                              error_type="refused", attempts=attempt,
                              message=self._ledger.scrub(c.text)
                              or f"finish_reason={c.finish_reason}")
            self._ledger.error(failure, charged=True, usage=usage, cost_usd=cost,
                               sim_s=req.sim_time)
            return failure
        self._ledger.answer(index, key.key_id, req, c, usage=usage, estimated=estimated,
                            cost_usd=cost, latency_s=latency, attempt=attempt)
        return Answer(index=index, key_id=key.key_id, prompt=req.prompt, text=c.text,
                      finish_reason=c.finish_reason, logprobs=c.logprobs,
                      usage=Usage(in_tok, out_tok, estimated, cost), attempts=attempt)

    def failed(self, index: int, key: Key, req: QueryRequest, attempt: int,
               reservation: Reservation, e: EndpointError, wait: float | None) -> Failure:
        """An attempt that failed: charged and logged (with the retry ``wait``, ``None``: no
        retry); an auth/permission/quota error kills the key, unless it is waited out (a
        quota on a simulated clock)."""
        worst_case, cost, charged = self._purse.settle_failure(
            e.error_type, e.maybe_served, e.status, reservation)
        usage = UsageRecord(input_tokens=reservation.input_tokens,
                            output_tokens=reservation.output_tokens) if worst_case else None
        message = self._ledger.scrub(e.message)
        if charged and usage is not None and e.error_type != "invalid_response":
            message += " (the request was sent: charged at its worst case)"
        failure = Failure(index=index, key_id=key.key_id, prompt=req.prompt,
                          error_type=e.error_type, message=message, status=e.status,
                          attempts=attempt)
        self._ledger.error(failure, retry_after=e.retry_after, wait_s=wait, charged=charged,
                           usage=usage, cost_usd=cost, sim_s=req.sim_time)
        if e.error_type in FATAL and wait is None:
            self._keys.kill(key, failure)
        return failure

    def log_sent(self, sent: list[SentEntry], index: int, key_id: str, prompt: str,
                 attempt: int, worst: UsageRecord, usd: float) -> None:
        """Log an attempt as ``sent`` just before it goes out (kept in ``sent``)."""
        sent.append(self._ledger.sent(index, key_id, prompt, attempt, worst, usd))

    def not_sent(self, index: int, key: Key, req: QueryRequest) -> Failure:
        """A query on a dead key: logged, free, not sent."""
        assert key.dead is not None
        return self._ledger.not_sent(index, key.key_id, req.prompt, key.dead)

    def cancelled(self, reservation: Reservation, sent: list[SentEntry]) -> None:
        """An attempt cancelled in flight: charged its worst case when it had been sent (it
        may have been served), released otherwise."""
        if sent:
            self._purse.settle(reservation, reservation.input_tokens, reservation.output_tokens)
            self._ledger.interrupted(sent[0], count=True)
        else:
            self._purse.release(reservation)
