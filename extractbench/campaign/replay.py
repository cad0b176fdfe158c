"""Resuming a harvest exactly once: the attack is replayed against what it already bought.

A resumed cell re-runs its attack from the same seed. Each query it makes gets the same index
as in the interrupted run (indices are handed out in call order, which a seeded attack
repeats), so the oracle can look the query up in the log:

- the log has the query's outcome (an answer, a refusal, a final error, a query not sent on a
  dead key): it is returned as it was, without sending or charging again;
- the log has only retried attempts of it (the run died during a backoff or a retry): it is
  sent live, its attempts numbered on from the logged ones;
- the log has nothing for it (it was in flight at the crash, or stopped by the budget): it is
  sent live (budget decisions are made again, on the same spend).

The logged spend counts against the budget from the start, so live queries can never take the
total past a limit; what the attack *sees* (``remaining()``) is the spend up to the point it
has replayed, as in the uninterrupted run, so its decisions come out the same.

A query that does not match its logged counterpart (another prompt, settings or key: the
attack or the scenario changed) ends the replay: the rest of the log keeps its spend and its
answers (they stay training pairs: they were bought), and from then on every query is live
under fresh indices. A note in the log says where.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from extractbench.campaign.keys import Key, KeyRing
from extractbench.campaign.ledger import Ledger
from extractbench.campaign.outcomes import FATAL, Answer, Failure, QueryOutcome, Usage
from extractbench.campaign.purse import Purse
from extractbench.config.budget import Spent
from extractbench.endpoints.clients import QueryRequest
from extractbench.logs.harvest import (
    Entry,
    ErrorEntry,
    NoteEntry,
    ResponseEntry,
    in_flight,
    spent_in,
)

__all__ = ["Logged", "Replay", "Replayer", "Step"]


@dataclass
class Logged:
    """What the log holds for one query index."""

    entries: list[ResponseEntry | ErrorEntry] = field(default_factory=list)

    @property
    def prompt(self) -> str:
        e = self.entries[0]
        return e.request.prompt if isinstance(e, ResponseEntry) else e.prompt

    @property
    def key_id(self) -> str | None:
        return self.entries[0].key_id

    @property
    def final(self) -> ResponseEntry | ErrorEntry | None:
        """The query's outcome, or None when only retried attempts were logged."""
        last = self.entries[-1]
        if isinstance(last, ResponseEntry) or last.wait_s is None:
            return last
        return None

    @property
    def attempts(self) -> int:
        return max(e.attempt for e in self.entries)

    def spent(self) -> Spent:
        return spent_in(self.entries)

    def mismatch(self, req: QueryRequest, key_id: str) -> str | None:
        """Why ``req`` on ``key_id`` is not this logged query, or None when it is."""
        if req.prompt != self.prompt:
            return "another prompt"
        if self.key_id is not None and key_id != self.key_id:
            return f"another key ({key_id!r}, logged {self.key_id!r})"
        for e in self.entries:
            if isinstance(e, ResponseEntry):
                p = e.request.params
                mine = (req.temperature, req.max_tokens, req.top_p, req.seed, req.stop,
                        req.logprobs, req.top_logprobs)
                logged = (p.temperature, p.max_tokens, p.top_p, p.seed, p.stop, p.logprobs,
                          p.top_logprobs)
                if mine != logged:
                    return "other generation settings"
        return None


class Replay:
    """The part of a harvest a resumed attack has not yet replayed."""

    def __init__(self, prior: Sequence[Entry]) -> None:
        self._by_index: dict[int, Logged] = {}
        for e in prior:
            if isinstance(e, ErrorEntry) and e.error_type == "budget":
                continue  # free, and decided again on resume
            if isinstance(e, ResponseEntry | ErrorEntry):
                self._by_index.setdefault(e.index, Logged()).entries.append(e)
        indices = [e.index for e in prior if isinstance(e, ResponseEntry | ErrorEntry)]
        self.end = max(indices, default=-1) + 1
        """One past the largest logged index: the first index no earlier run used."""
        self._notes = Counter(_note_key(e) for e in prior if isinstance(e, NoteEntry))
        self.replayed = 0
        self.active = bool(self._by_index)

    def __len__(self) -> int:
        return len(self._by_index)

    def take(self, index: int) -> Logged | None:
        """The logged query at ``index`` (removed from the replay), or None."""
        if not self.active:
            return None
        logged = self._by_index.pop(index, None)
        if logged is not None:
            self.replayed += 1
        if not self._by_index:
            self.active = False
        return logged

    def abandon(self) -> None:
        """Stop replaying (the caller shows all logged spend from now on)."""
        self._by_index.clear()
        self.active = False

    def seen_note(self, text: str, data: dict[str, object]) -> bool:
        """True (once per logged copy) when the log already has this note: a replayed attack
        writes its notes again, and the log keeps one copy."""
        k = _note_key_of(text, data)
        if self._notes[k] > 0:
            self._notes[k] -= 1
            return True
        return False


@dataclass(frozen=True)
class Step:
    """What the log decides for one query of a resumed attack."""

    index: int
    """The index the query goes under: its own, or a fresh one after a divergence."""
    key: Key | None = None
    """The key the log says it used (``None``: the oracle picks one as usual)."""
    outcome: QueryOutcome | None = None
    """The logged outcome, returned as it was: nothing is sent or charged again."""
    first_attempt: int = 1
    """The number of the first live attempt (on from the logged retried ones)."""
    overhead: int | None = None
    """The input-token overhead the logged answer showed, for the oracle to learn as the
    live run did."""
    diverged: bool = False
    """The query is not the logged one: the replay ended here and ``index`` is fresh."""


class Replayer:
    """Drives a resumed attack through its log (see the module docstring): for each query
    the logged outcome, the logged key and attempt count, or the end of the replay. Works on
    the oracle's parts: its keys (the logged key is picked; a key the log saw refused is
    dead again), its purse (the replayed spend becomes visible) and its ledger (the replayed
    entries are counted, a divergence noted)."""

    def __init__(self, replay: Replay, keys: KeyRing, purse: Purse, ledger: Ledger) -> None:
        self.replay = replay
        self._keys, self._purse, self._ledger = keys, purse, ledger

    @classmethod
    def resume(cls, prior: list[Entry], replay: bool, keys: KeyRing, purse: Purse,
               ledger: Ledger) -> tuple[Replayer, int]:
        """Take up a harvest log's ``prior`` entries: attempts left in flight are charged
        (``interrupted``), the logged spend is restored (hidden while a replay shows it query
        by query), and the oracle's next index is returned (0 when replaying, else after the
        last logged one). Without ``replay`` every query is new."""
        prior = prior + [ledger.interrupted(lost, count=False) for lost in in_flight(prior)]
        replayer = cls(Replay(prior if replay else []), keys, purse, ledger)
        logged = spent_in(prior)
        active = replayer.replay.active
        purse.restore(logged, hidden=logged if active else None)
        indices = [e.index for e in prior if isinstance(e, ResponseEntry | ErrorEntry)]
        return replayer, 0 if active else max(indices, default=-1) + 1

    def step(self, index: int, key_index: int | None, req: QueryRequest,
             next_index: int) -> Step:
        """The decision for query ``index`` (``next_index``: the oracle's next free index)."""
        logged = self.replay.take(index)
        if logged is None:
            return Step(index)
        key = (self._keys.pick_as_logged(logged.key_id)
               if key_index is None and logged.key_id is not None else None)
        if key is None:
            key = self._keys.pick(key_index)
        why = logged.mismatch(req, key.key_id)
        if why is not None:
            return Step(self._diverged(index, why, next_index), key, diverged=True)
        self._ledger.replayed(logged.entries)
        self._purse.shown(logged.spent())
        final = logged.final
        if final is None:  # only retried attempts: sent live, numbered on
            return Step(index, key, first_attempt=logged.attempts + 1)
        return self._outcome(final, key, req)

    def _outcome(self, final: ResponseEntry | ErrorEntry, key: Key, req: QueryRequest) -> Step:
        if isinstance(final, ResponseEntry):
            key.verified = True
            u = final.usage
            overhead = None if final.tokens_estimated else (
                u.input_tokens - len(req.prompt.encode()))
            return Step(final.index, key, overhead=overhead, outcome=Answer(
                index=final.index, key_id=final.key_id, prompt=req.prompt,
                text=final.response.text, finish_reason=final.response.finish_reason,
                logprobs=final.response.logprobs,
                usage=Usage(u.input_tokens, u.output_tokens, final.tokens_estimated,
                            final.cost_usd),
                attempts=final.attempt))
        failure = Failure(index=final.index, key_id=final.key_id, prompt=req.prompt,
                          error_type=final.error_type, message=final.message,
                          status=final.status, attempts=final.attempt)
        if final.error_type in FATAL:
            self._keys.kill(key, failure)
        elif final.charged and final.status is not None:
            key.verified = True
        return Step(final.index, key, outcome=failure)

    def _diverged(self, index: int, why: str, next_index: int) -> int:
        """End the replay at ``index`` (the attack asked for something else than the log
        has); returns the fresh index the query gets."""
        self.replay.abandon()
        self._purse.shown(None)
        fresh = max(next_index, self.replay.end)
        self._ledger.note("replay diverged: live from here", index=index, why=why,
                          fresh_index=fresh)
        return fresh


def _note_key(e: NoteEntry) -> str:
    return _note_key_of(e.text, dict(e.data))


def _note_key_of(text: str, data: dict[str, object]) -> str:
    import json

    return json.dumps([text, data], sort_keys=True, default=str)

