"""Legitimate traffic through a defended profile, and what it says about the defense's cost.

- :func:`run_benign`: several ``benign-*`` keys, each a user who sends prompts from the task's
  ``benign`` split with random (exponential) gaps of mean ``pacing_s``, concurrently with an
  attack, until told to stop. Every request and its answer or error is kept (and, with
  ``log_path``, appended to a JSONL file as it happens). The detector's false-positive rate
  and the benign users' error rate come from this traffic.
- :func:`defended_score`: the held-out score of the profile as a benign user sees it — the
  held-out prompts sent through the defended endpoint with benign keys (an unanswered prompt
  scores 0). ``utility = defended_score / teacher_score``.

Benign users send through the official SDK clients
(:func:`extractbench.endpoints.clients.make_client`),
never through the attacker's oracle: they keep no budget and do not retry, except that a 429
makes that user wait ``retry-after`` before its next request.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from extractbench.campaign.simclock import SimClock
from extractbench.config.budget import Budget
from extractbench.endpoints.clients import (
    Endpoint,
    EndpointClient,
    EndpointError,
    QueryRequest,
    make_client,
)
from extractbench.logs.harvest import HarvestLog, pairs
from extractbench.tasks.base import Task, TaskItem, prompt_hash

__all__ = ["CUSTOMER_LEADS", "BenignEntry", "BenignResult", "DefendedScore", "MixPart",
           "UserPlan", "asked", "defended_score", "run_benign", "user_prompts", "user_requests"]

MAX_RETRY_WAIT_S = 30.0
"""A benign user waits at most this long for a 429's retry-after before its next request."""


@dataclass(frozen=True)
class MixPart:
    """Another task a benign user also asks about: its benign prompts and its share of the
    user's requests."""

    task: str
    """The scenario's key of that task (what :func:`run_benign`'s ``routes`` are keyed by)."""
    prompts: tuple[str, ...]
    """Its benign split's prompts, worded as its attack pool words them."""
    share: float
    customer: bool = False
    """Whether its teacher reads past a greeting: a customer-worded user greets it too."""


@dataclass(frozen=True)
class UserPlan:
    """How one benign user sends: mean gap, at least how many, at most how many, in bursts
    of how many back-to-back requests (the gap after a burst has mean ``burst x pacing_s``)."""

    pacing_s: float
    min_queries: int = 0
    max_queries: int | None = None
    burst: int = 1
    prompts: str = "matched"
    """``matched``: the task's benign prompts as the attack pool words them; ``customer``: in
    the user's own wording (:data:`CUSTOMER_LEADS`)."""
    focus: int | None = None
    """Ask about only this many of the benign items (the user's own, drawn once), again and
    again; ``None``: all of them."""
    mix: tuple[MixPart, ...] = ()
    """Other tasks the user also asks about (the rest of its requests ask about the cell's)."""


CUSTOMER_LEADS = ("Hello! ", "Hey! ", "Good morning. ", "Question: ", "Quick one: ",
                  "Hi there! ", "One more: ", "Hello, ")
"""How customer-worded users open every request, one habit per user: wordings no shipped
attack sends (stealth's greetings are others), so a content test could tell them from the
pool. Only a teacher that reads a request past its greeting answers them as it answers the
pool (of the shipped ones, ``classify-ref``: its tickets carry the question)."""


def user_prompts(plan: UserPlan, prompts: Sequence[str], rng: random.Random) -> list[str]:
    """The prompts one user with ``plan`` asks, in the split's order: its ``focus`` share of
    them, in its wording, then those of its ``mix`` tasks. A matched user with no focus and no
    mix asks them all and draws nothing from ``rng``."""
    return [p for p, _ in user_requests(plan, prompts, rng)]


def user_requests(plan: UserPlan, prompts: Sequence[str],
                  rng: random.Random) -> list[tuple[str, str | None]]:
    """:func:`user_prompts` with the task each asks about (``None``: the cell's own). Each mix
    task gets ``share / (1 - the shares)`` as many prompts as the user's own, at least one,
    drawn after the user's own (a plan without ``mix`` draws what it always drew)."""
    mine = list(prompts)
    if plan.focus is not None and plan.focus < len(mine):
        mine = [mine[i] for i in sorted(rng.sample(range(len(mine)), plan.focus))]
    lead = ""
    if plan.prompts == "customer":
        lead = rng.choice(CUSTOMER_LEADS)
    elif plan.prompts != "matched":
        raise ValueError(f"run_benign: prompts must be matched or customer, got {plan.prompts!r}")
    out: list[tuple[str, str | None]] = [(lead + p, None) for p in mine]
    own = 1.0 - sum(part.share for part in plan.mix)
    for part in plan.mix:
        if not part.prompts:
            raise ValueError(f"run_benign: mix task {part.task!r} has no benign prompts")
        n = max(1, round(part.share / own * len(mine)))
        picked = [part.prompts[i] for i in
                  sorted(rng.sample(range(len(part.prompts)), min(n, len(part.prompts))))]
        greet = lead if part.customer else ""
        out += [(greet + picked[i % len(picked)], part.task) for i in range(n)]
    return out


def asked(prompt: str) -> str:
    """The benign item's prompt a (customer-worded) request asks."""
    for lead in CUSTOMER_LEADS:
        if prompt.startswith(lead):
            return prompt[len(lead):]
    return prompt


@dataclass(frozen=True)
class BenignEntry:
    """One benign request and what came back."""

    key_id: str
    index: int
    """This key's request number, from 0."""
    time: float
    """When it was sent, seconds since the epoch; on a simulated clock, simulated seconds
    since the campaign began."""
    prompt: str
    text: str | None
    """The answer's text; ``None`` when the request failed."""
    error_type: str | None = None
    status: int | None = None
    message: str | None = None
    latency_s: float = 0.0
    retry_after: float | None = None
    """The wait a 429 asked for, seconds."""
    task: str | None = None
    """The other task (a cohort's ``mix``) this request asked about; ``None``: the cell's."""

    @property
    def ok(self) -> bool:
        return self.text is not None


@dataclass
class BenignResult:
    """Everything the benign users sent, in order of completion."""

    key_ids: list[str]
    entries: list[BenignEntry] = field(default_factory=list)

    @property
    def queries(self) -> int:
        return len(self.entries)

    @property
    def answered(self) -> int:
        return sum(e.ok for e in self.entries)

    def errors(self) -> dict[str, int]:
        """Failed requests by error type (``rate_limit``, ``permission``, ...)."""
        return dict(Counter(e.error_type for e in self.entries if e.error_type))

    def by_key(self, key_id: str) -> list[BenignEntry]:
        return [e for e in self.entries if e.key_id == key_id]

    def refused_keys(self) -> list[str]:
        """Keys that got at least one 403 (blocked): the users a defense turned away."""
        return sorted({e.key_id for e in self.entries if e.status == 403})

    def score(self, task: Task, items: Sequence[TaskItem],
              keys: Sequence[str] | None = None, of: str | None = None) -> float | None:
        """Mean score of the benign answers whose prompt is one of ``items`` (failed requests
        score 0), of ``keys`` only when given, of requests about task ``of`` (``None``: the
        cell's own); ``None`` when none was sent."""
        wanted = None if keys is None else set(keys)
        scored = [v for k, v in self._scored(task, items, of) if wanted is None or k in wanted]
        return sum(scored) / len(scored) if scored else None

    def score_by_key(self, task: Task, items: Sequence[TaskItem]) -> dict[str, float]:
        """Per key that sent any of ``items`` about the cell's own task: the mean score of what
        it received, as :meth:`score` with that key alone."""
        scored: dict[str, list[float]] = {}
        for key, value in self._scored(task, items, None):
            scored.setdefault(key, []).append(value)
        return {k: sum(v) / len(v) for k, v in scored.items()}

    def _scored(self, task: Task, items: Sequence[TaskItem],
                of: str | None) -> Iterator[tuple[str, float]]:
        """(key, score) of each request about task ``of`` whose prompt is one of ``items``."""
        by_prompt = {i.prompt: i for i in items}
        for e in self.entries:
            item = by_prompt.get(asked(e.prompt)) if e.task == of else None
            if item is not None:
                yield e.key_id, (task.score(task.extract(e.text), item)
                                 if e.text is not None else 0.0)


async def run_benign(
    endpoint: Endpoint,
    keys: Sequence[tuple[str, str]],
    prompts: Sequence[str],
    *,
    max_tokens: int,
    pacing_s: float,
    stop: asyncio.Event,
    seed: int,
    temperature: float = 0.0,
    min_per_key: int = 0,
    max_per_key: int | None = None,
    log_path: Path | None = None,
    client: EndpointClient | None = None,
    plans: dict[str, UserPlan] | None = None,
    follow: SimClock | None = None,
    routes: Mapping[str, tuple[str, int]] | None = None,
) -> BenignResult:
    """Send benign traffic from every ``(key_id, api_key)`` until ``stop`` is set and each key
    has sent ``min_per_key`` requests (or until it has sent ``max_per_key``).

    Each key goes through ``prompts`` in its own seeded order (starting over when done), waits
    an exponential gap of mean ``pacing_s`` between requests (a random fraction of one before
    the first), and waits out a 429's ``retry-after`` (up to ``MAX_RETRY_WAIT_S``). ``plans``
    gives a key its own :class:`UserPlan` (a cohort's pacing, minimum and bursts) instead.

    With ``follow`` (the attacker's :class:`~extractbench.campaign.simclock.SimClock`) the users
    run on that simulated clock instead (``stop`` is not used): each user's gaps are simulated
    seconds, sent as each request's simulated time, one request at a time, without sleeping.
    A user sends while its time is before the campaign's simulated length, or until it has
    sent its minimum; and at most as many as the attacker's busiest key (no legitimate user
    out-sends the attacker) unless its minimum is more. While the attack runs a user waits
    whenever its next request is not yet sure to happen, so what it sends does not depend on
    how fast either side ran.

    ``routes``: for each task a plan's ``mix`` names, the model to ask and its answer length
    in tokens."""
    if not keys:
        raise ValueError("run_benign: give at least one (key_id, api_key)")
    if not prompts:
        raise ValueError("run_benign: give at least one prompt (the task's benign split)")
    if pacing_s <= 0:
        raise ValueError(f"run_benign: pacing_s must be > 0, got {pacing_s}")
    if max_tokens < 1:
        raise ValueError(f"run_benign: max_tokens must be >= 1, got {max_tokens}")
    result = BenignResult(key_ids=[k for k, _ in keys])
    own = client is None
    sdk = client or make_client(endpoint)
    log = log_path.open("a", encoding="utf-8") if log_path is not None else None
    default = UserPlan(pacing_s, min_per_key, max_per_key)
    ask = _Ask(max_tokens, temperature, dict(routes or {}))
    for plan in (plans or {}).values():
        for part in plan.mix:
            if part.task not in ask.routes:
                raise ValueError(f"run_benign: no route for mix task {part.task!r}")
    try:
        await asyncio.gather(*(
            _user(sdk, key_id, api_key, list(prompts), ask,
                  (plans or {}).get(key_id, default), stop,
                  random.Random(f"{seed}/benign/{key_id}"), result, log)
            if follow is None else
            _sim_user(sdk, key_id, api_key, list(prompts), ask,
                      (plans or {}).get(key_id, default), follow,
                      random.Random(f"{seed}/benign/{key_id}"), result, log)
            for key_id, api_key in keys
        ))
    finally:
        if own:
            await sdk.aclose()
        if log is not None:
            log.close()
    return result


@dataclass(frozen=True)
class _Ask:
    """How a benign request asks: its answer length and temperature, and where a mix task's
    requests go (task -> (model, answer tokens))."""

    max_tokens: int
    temperature: float
    routes: dict[str, tuple[str, int]]

    def request(self, prompt: str, task: str | None, sim_time: float | None = None
                ) -> QueryRequest:
        model, max_tokens = (None, self.max_tokens) if task is None else self.routes[task]
        return QueryRequest(prompt=prompt, max_tokens=max_tokens,
                            temperature=self.temperature, model=model, sim_time=sim_time)


async def _user(sdk: EndpointClient, key_id: str, api_key: str, prompts: list[str],
                ask: _Ask, plan: UserPlan, stop: asyncio.Event,
                rng: random.Random, result: BenignResult, log: IO[str] | None) -> None:
    if plan.pacing_s <= 0 or plan.burst < 1:
        raise ValueError(f"run_benign: {key_id}: pacing_s must be > 0 and burst >= 1")
    requests = user_requests(plan, prompts, rng)
    min_n, max_n = plan.min_queries, plan.max_queries
    order: list[tuple[str, str | None]] = []
    sent = 0
    wait = rng.random() * plan.pacing_s * plan.burst
    while True:
        if stop.is_set():
            if sent >= min_n:
                return
            await asyncio.sleep(wait)
        else:
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
                continue  # stopped while waiting: re-check min_per_key
            except TimeoutError:
                pass
        if max_n is not None and sent >= max_n:
            return
        if not order:
            order = list(requests)
            rng.shuffle(order)
        prompt, task = order.pop()
        started, t0 = time.time(), time.monotonic()
        req = ask.request(prompt, task)
        wait = gap_after(plan, sent, rng)
        try:
            c = await sdk.complete(req, api_key)
            entry = BenignEntry(key_id, sent, started, prompt, c.text,
                                latency_s=time.monotonic() - t0, task=task)
        except EndpointError as e:
            entry = BenignEntry(key_id, sent, started, prompt, None, e.error_type, e.status,
                                e.message.splitlines()[0][:200] if e.message else None,
                                latency_s=time.monotonic() - t0, task=task)
            if e.error_type == "rate_limit" and e.retry_after:
                wait = max(wait, min(MAX_RETRY_WAIT_S, e.retry_after))
        sent += 1
        _keep(entry, result, log)


def _keep(entry: BenignEntry, result: BenignResult, log: IO[str] | None) -> None:
    result.entries.append(entry)
    if log is not None:
        line = json.dumps({"entry_type": "benign", **asdict(entry)}, sort_keys=True)
        log.write(line + "\n")
        log.flush()


def gap_after(plan: UserPlan, sent: int, rng: random.Random) -> float:
    """The gap after request ``sent`` (0-based): none within a burst, else exponential with
    mean ``burst x pacing_s``."""
    if (sent + 1) % plan.burst:
        return 0.0
    return rng.expovariate(1.0 / (plan.pacing_s * plan.burst))


def _goes(plan: UserPlan, sent: int, t: float, clock: SimClock) -> bool:
    """Whether request ``sent`` (at simulated time ``t``) goes, by the clock as it stands; once
    true it stays true (the attacker's time and busiest key only grow)."""
    if plan.max_queries is not None and sent >= plan.max_queries:
        return False
    if sent < plan.min_queries:
        return True
    return t < clock.elapsed() and sent < clock.busiest()


UNORDERED_LANES = 8
"""Requests one benign user has in flight at once against an endpoint whose defenses decide
each request on its own (``SimClock.serial`` false): nothing there depends on their order."""


async def _sim_user(sdk: EndpointClient, key_id: str, api_key: str, prompts: list[str],
                    ask: _Ask, plan: UserPlan, clock: SimClock,
                    rng: random.Random, result: BenignResult, log: IO[str] | None) -> None:
    if plan.pacing_s <= 0 or plan.burst < 1:
        raise ValueError(f"run_benign: {key_id}: pacing_s must be > 0 and burst >= 1")
    requests = user_requests(plan, prompts, rng)
    lanes = 1 if clock.serial else UNORDERED_LANES
    order: list[tuple[str, str | None]] = []
    sent = 0
    t = rng.random() * plan.pacing_s * plan.burst
    while True:
        # (index, time, (prompt, task), gap after)
        wave: list[tuple[int, float, tuple[str, str | None], float]] = []
        while len(wave) < lanes:
            while not _goes(plan, sent, t, clock) and not clock.finished:
                await clock.progressed().wait()  # not sure yet: wait for the attacker
            if not _goes(plan, sent, t, clock):
                break
            if not order:
                order = list(requests)
                rng.shuffle(order)
            wave.append((sent, t, order.pop(), gap_after(plan, sent, rng)))
            sent += 1
            t += wave[-1][3]
            if lanes > 1 and not clock.finished:
                break  # one at a time while the attack runs; waves once the clock is final
        if not wave:
            return
        entries = await asyncio.gather(*(
            _sim_send(sdk, key_id, api_key, i, at, asking, ask) for i, at, asking, _ in wave))
        for entry, (_, _, _, gap) in zip(entries, wave, strict=True):
            if entry.error_type == "rate_limit" and entry.retry_after and lanes == 1:
                t += max(0.0, min(MAX_RETRY_WAIT_S, entry.retry_after) - gap)
            _keep(entry, result, log)


async def _sim_send(sdk: EndpointClient, key_id: str, api_key: str, index: int, at: float,
                    asking: tuple[str, str | None], ask: _Ask) -> BenignEntry:
    prompt, task = asking
    req = ask.request(prompt, task, sim_time=at)
    t0 = time.monotonic()
    try:
        c = await sdk.complete(req, api_key)
        return BenignEntry(key_id, index, at, prompt, c.text, latency_s=time.monotonic() - t0,
                           task=task)
    except EndpointError as e:
        return BenignEntry(key_id, index, at, prompt, None, e.error_type, e.status,
                           e.message.splitlines()[0][:200] if e.message else None,
                           latency_s=time.monotonic() - t0, retry_after=e.retry_after,
                           task=task)


@dataclass(frozen=True)
class DefendedScore:
    """The held-out score through the defended profile."""

    scores: list[float]
    """Per held-out item, in order (0 when the profile gave no answer)."""
    answers: list[str | None]
    """Extracted answers (``None``: no answer, or none extractable)."""
    errors: dict[str, int]
    """Failed attempts by error type."""

    @property
    def value(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else 0.0

    def utility(self, teacher_score: float | None) -> float | None:
        """``defended_score / teacher_score`` (``None`` when the teacher scores 0)."""
        if not teacher_score:
            return None
        return self.value / teacher_score


async def defended_score(
    endpoint: Endpoint,
    keys: Sequence[tuple[str, str]],
    task: Task,
    items: Sequence[TaskItem],
    *,
    log_path: Path,
    max_tokens: int | None = None,
    temperature: float = 0.0,
    concurrency: int = 4,
    seed: int = 0,
    simulated: bool = False,
) -> DefendedScore:
    """Send each held-out prompt once through ``endpoint`` with ``keys`` in turn (a benign
    user's view: retries on 429 and 5xx honouring retry-after, through the Oracle) and score
    the answers. ``log_path`` is the Oracle's harvest log; answers already in it are reused, so
    a re-run sends only what is missing. Spread the prompts over enough keys that no key looks
    like a heavy user to a per-key detector (e.g. 10 keys for 300 items). ``simulated``:
    on the endpoint's simulated clock (each key one request at a time, from time 0)."""
    from extractbench.campaign.oracle import Answer, Oracle, RetryPolicy, Segment
    from extractbench.campaign.simclock import SimClock

    if not keys:
        raise ValueError("defended_score: give at least one (key_id, api_key)")
    log = HarvestLog(log_path)
    done = {e.request.prompt_hash: e.response.text for e in pairs(log.entries())}
    todo = [i.prompt for i in items if prompt_hash(i.prompt) not in done]
    budget = Budget(queries=max(1, 5 * len(todo)))
    oracle = Oracle(endpoint, list(keys), budget, log, concurrency=concurrency,
                    retry=RetryPolicy(seed=seed), segment=Segment(attack="benign-eval"),
                    replay=False, sim=SimClock(lanes=concurrency) if simulated else None)
    try:
        outcomes = await oracle.query_many(
            todo, max_tokens=max_tokens or task.max_answer_tokens, temperature=temperature)
    finally:
        await oracle.aclose()
    for o in outcomes:
        if isinstance(o, Answer):
            done[prompt_hash(o.prompt)] = o.text
    answers: list[str | None] = []
    scores: list[float] = []
    for item in items:
        text = done.get(prompt_hash(item.prompt))
        answer = task.extract(text) if text is not None else None
        answers.append(answer)
        scores.append(task.score(answer, item) if text is not None else 0.0)
    return DefendedScore(scores, answers, oracle.stats().errors)
