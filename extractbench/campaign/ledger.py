"""The oracle's books: every answer and every error goes to the harvest log (keys scrubbed
from messages), counted for :class:`~extractbench.campaign.outcomes.OracleStats`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from extractbench.campaign.outcomes import Failure, OracleStats
from extractbench.config.budget import Spent
from extractbench.endpoints.clients import Completion, Endpoint, QueryRequest, scrub
from extractbench.logs.harvest import (
    ErrorEntry,
    HarvestLog,
    RequestParams,
    RequestRecord,
    ResponseEntry,
    ResponseRecord,
    SentEntry,
    UsageRecord,
)
from extractbench.tasks.base import prompt_hash

__all__ = ["Ledger"]


class Ledger:
    def __init__(self, harvest: HarvestLog, endpoint: Endpoint, secrets: Sequence[str]) -> None:
        self.harvest = harvest
        self.endpoint = endpoint
        self._secrets = list(secrets)
        self.errors: Counter[str] = Counter()
        self.answers = 0
        self.retries = 0
        self.waited = 0.0

    def scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def note(self, text: str, **data: Any) -> None:
        self.harvest.note(text, **data)

    def replayed(self, entries: Sequence[ResponseEntry | ErrorEntry]) -> None:
        """Count a resumed harvest's logged entries of one query as if just made (they are
        not written again)."""
        for e in entries:
            if isinstance(e, ResponseEntry):
                self.answers += 1
            else:
                self.errors[e.error_type] += 1
                if e.wait_s is not None:
                    self.retried(e.wait_s)

    def retried(self, wait: float) -> None:
        self.retries += 1
        self.waited += wait

    def stats(self, spent: Spent) -> OracleStats:
        return OracleStats(spent=spent, answers=self.answers, errors=dict(self.errors),
                           retries=self.retries, waited_s=self.waited)

    def error(
        self,
        f: Failure,
        *,
        charged: bool,
        retry_after: float | None = None,
        wait_s: float | None = None,
        usage: UsageRecord | None = None,
        cost_usd: float = 0.0,
        sim_s: float | None = None,
    ) -> None:
        self.errors[f.error_type] += 1
        self.harvest.append(
            ErrorEntry(
                index=f.index,
                key_id=f.key_id,
                prompt_hash=prompt_hash(f.prompt),
                prompt=f.prompt,
                error_type=f.error_type,
                status=f.status,
                message=self.scrub(f.message),
                retry_after=retry_after,
                attempt=f.attempts,
                wait_s=wait_s,
                charged=charged,
                usage=usage,
                cost_usd=cost_usd,
                sim_s=sim_s,
            )
        )

    def sent(self, index: int, key_id: str, prompt: str, attempt: int,
             worst: UsageRecord, cost_usd: float) -> SentEntry:
        """An attempt is about to go out (resolved by the answer or error logged after it)."""
        entry = SentEntry(index=index, attempt=attempt, key_id=key_id,
                          prompt_hash=prompt_hash(prompt), prompt=prompt, usage=worst,
                          cost_usd=cost_usd)
        self.harvest.append(entry, sync=False)
        return entry

    def interrupted(self, lost: SentEntry, *, count: bool) -> ErrorEntry:
        """The error that resolves a ``sent`` attempt whose outcome never came (the process
        died, or the query was cancelled in flight): charged at its worst case, retried.
        ``count``: count it in this session's stats (not for a resumed log's, which count
        when replayed)."""
        entry = ErrorEntry(
            index=lost.index, key_id=lost.key_id, prompt_hash=lost.prompt_hash,
            prompt=lost.prompt, error_type="interrupted", attempt=lost.attempt,
            message="in flight when the run stopped: the endpoint may have served it, so it is "
                    "charged at its worst case",
            wait_s=0.0, charged=True, usage=lost.usage, cost_usd=lost.cost_usd)
        if count:
            self.errors["interrupted"] += 1
        self.harvest.append(entry)
        return entry

    def held_out(self, index: int, prompt: str, content: str) -> Failure:
        """A prompt asking about held-out content: logged, free, not sent."""
        failure = Failure(index=index, key_id=None, prompt=prompt, error_type="heldout",
                          message=f"not sent: it asks about held-out content {content!r}")
        self.error(failure, charged=False)
        return failure

    def not_sent(self, index: int, key_id: str, prompt: str, cause: Failure) -> Failure:
        """A query on a key that was rejected earlier: logged, free, not sent."""
        failure = Failure(
            index=index,
            key_id=key_id,
            prompt=prompt,
            error_type=cause.error_type,
            message=f"not sent: key {key_id!r} was rejected earlier ({cause.message})",
            status=cause.status,
        )
        self.error(failure, charged=False)
        return failure

    def answer(self, index: int, key_id: str, req: QueryRequest, c: Completion, *,
               usage: UsageRecord, estimated: bool, cost_usd: float, latency_s: float,
               attempt: int) -> None:
        self.answers += 1
        self.harvest.append(
            ResponseEntry(
                index=index,
                key_id=key_id,
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
                        logit_bias=({str(k): v for k, v in req.logit_bias.items()}
                                    if req.logit_bias else None),
                    ),
                ),
                response=ResponseRecord(
                    text=c.text, finish_reason=c.finish_reason, logprobs=c.logprobs
                ),
                usage=usage,
                tokens_estimated=estimated,
                cost_usd=cost_usd,
                latency_s=latency_s,
                attempt=attempt,
                sim_s=req.sim_time,
            )
        )
