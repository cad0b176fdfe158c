"""``stealth``: the campaign built to evade per-key detection.

Idea: the same harvest as ``random-pool``, disguised. Queries are spread over all the
attacker's keys (``AttackSpec.keys`` in the scenario gives the oracle N keys), each key is
paced with jitter so no key bursts, pool prompts are paraphrased so no key sends a visibly
templated sequence, and benign-looking filler questions are mixed in so each key's traffic
resembles a legitimate user's. The student trains on the *original* pool prompt of each
paraphrase (recorded with :meth:`~attacks.base.AttackContext.train_on`); filler answers are
not trained on. Stealth is paid for: filler costs budget and paraphrases may get worse answers.

Models: the campaigns industry threat reports on distillation describe — output collection
across thousands of accounts through proxies, traffic mixed with legitimate requests, adapting
when blocked — and the per-account detectors they evade, such as the query-distribution test
of Juuti et al., *PRADA* (EuroS&P 2019).

Adapts: when paraphrased questions get complete answers clearly less often than verbatim ones
(a model that only understands the task's phrasing), it halves the paraphrase share and does
not train on cut-off answers to paraphrases. A key refused with 401/403 (banned) is retired,
and the remaining keys slow down by ``slowdown`` (the defender is watching); a key that meets
a rate limit (429) slows down by ``slowdown`` and speeds up again by 10 % per clean round,
never faster than its start. It stops when the budget binds, every key is retired or at its
``max_per_key`` cap, or after ``patience`` rounds without an answer.

Parameters: ``paraphrase`` (share of pool prompts reworded, default 0.5), ``benign_share``
(share of queries that are filler, default 0.2), ``per_key_rpm`` (starting pace per key in
requests per minute; default none: unpaced until rate limited), ``jitter`` (relative jitter
of the pace, default 0.5), ``max_per_key`` (queries a key sends before it is retired, default
none), ``slowdown`` (default 2.0), ``per_key_batch`` (queries per key per round, default 8),
``temperature`` (default 0), ``max_tokens`` (default: the task's answer length),
``patience`` (default 3), ``adapt`` (default false).

Adaptive (``adapt: true``): the campaign reads what the scenario's threat model lets it know
of the defenses (``AttackContext.defenses``, from the attack's ``knows:``) and stays under
their thresholds: each key stops below a detector's ``min_queries`` (and ``volume_total``),
so no key is ever tested, and paces under a detector's volume limit and a rate limit's
requests per minute (:data:`SAFETY` of them). Knowing only the kind, it assumes the kind's
default parameters. It pays in accounts: a budget of B queries needs B / (min_queries - 1)
keys, and the scenario's ``keys:`` is what it bought.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from extractbench.campaign.oracle import BudgetExhausted, QueryOutcome
from extractbench.registry import PluginParams

from .base import ATTACKS, AttackContext, Temperature, Tracker

GENERIC_FILLER = (
    "Can you suggest a name for a small bakery?",
    "What is a good way to start learning to cook?",
    "How do I politely decline a meeting invitation?",
    "Give me a tip for sleeping better.",
    "What should I pack for a weekend hiking trip?",
    "How long should I boil an egg for a soft yolk?",
    "What's a fun fact about octopuses?",
    "Can you recommend a board game for four players?",
    "How do I keep basil fresh?",
    "What is a polite way to ask for feedback?",
    "Suggest a title for a blog post about gardening.",
    "How do I remove a coffee stain from a shirt?",
    "What are some stretches for a stiff neck?",
    "Write a one-line birthday message for a colleague.",
    "Why is the sky blue?",
    "How can I make my morning routine faster?",
)

_SWAPS = (
    ("What is ", "What's "), ("What is ", "Tell me "), ("Compute ", "Work out "),
    ("Calculate ", "Figure out "), ("Answer with", "Reply with"), ("answer with", "reply with"),
    ("the number only", "just the number"), ("Answer briefly", "Keep it short"),
    ("Which ", "Tell me which "), ("Who ", "Do you know who "),
)
_PREFIXES = ("", "", "Quick question: ", "Hi! ", "Please help: ", "I was wondering: ")
_SUFFIXES = ("", "", " Thanks!", " Thank you.")


def paraphrase(prompt: str, rng: random.Random) -> str:
    """A surface rewording that keeps the content (swaps of common phrasings, a greeting, a
    thank-you); returns ``prompt`` unchanged when nothing applies."""
    out = prompt
    swaps = [s for s in _SWAPS if s[0] in out]
    rng.shuffle(swaps)
    for old, new in swaps[: rng.randint(1, 2)] if swaps else []:
        out = out.replace(old, new, 1)
    prefix, suffix = rng.choice(_PREFIXES), rng.choice(_SUFFIXES)
    if prefix and out[:1].isupper() and not out[1:2].isupper():
        out = out[0].lower() + out[1:]
    out = f"{prefix}{out}{suffix}"
    if out == prompt:
        out = f"{rng.choice(_PREFIXES[2:])}{prompt}"
    return out


class _Quality:
    """Whether paraphrases cost answer quality: compares how often reworded and verbatim
    questions get a complete answer (not cut at the length limit). When reworded ones do
    clearly worse (a narrow model that only understands the task's own phrasing), the
    paraphrase share is halved and cut-off answers to paraphrases are not trained on."""

    MIN = 16  # answers of each kind before judging

    def __init__(self, share: float) -> None:
        self.share = share
        self.n = {True: 0, False: 0}
        self.complete = {True: 0, False: 0}
        self.cut_off: list[int] = []  # query indices of cut-off answers to paraphrases
        self._verdict: float | None = None  # the verbatim rate at the last adjustment

    def add(self, reworded: bool, complete: bool) -> None:
        self.n[reworded] += 1
        self.complete[reworded] += complete

    def rate(self, reworded: bool) -> float | None:
        n = self.n[reworded]
        return self.complete[reworded] / n if n >= self.MIN else None

    def suspect(self) -> bool:
        """Verbatim questions almost always get a complete answer (so a cut-off one to a
        paraphrase is a garbled answer)."""
        verbatim = self.rate(False)
        if verbatim is None:
            verbatim = self._verdict
        return verbatim is not None and verbatim >= 0.8

    def adjust(self, ctx: AttackContext) -> None:
        if self.suspect():  # drop cut-off answers to paraphrases (a later note overrides)
            for index in self.cut_off:
                ctx.train_on(index, None)
            self.cut_off.clear()
        para, verbatim = self.rate(True), self.rate(False)
        if para is None or verbatim is None or para >= 0.8 * verbatim or self.share < 0.05:
            return
        self.share /= 2
        ctx.oracle.note("stealth: paraphrases get worse answers; paraphrasing less",
                        complete_reworded=para, complete_verbatim=verbatim, share=self.share)
        self._verdict = verbatim
        self.n = {True: 0, False: 0}  # judge the new share on fresh answers
        self.complete = {True: 0, False: 0}


class _KeyState:
    def __init__(self, index: int, interval: float) -> None:
        self.index = index
        self.interval = interval
        self.base = interval
        self.next_at = 0.0
        self.sent = 0
        self.retired: str | None = None


class StealthParams(PluginParams):
    """The parameters of ``stealth``."""

    paraphrase: float = Field(default=0.5, ge=0, le=1, description="share of pool prompts "
                              "reworded, 0..1")
    benign_share: float = Field(default=0.2, ge=0, lt=1, description="share of queries that are "
                                "benign-looking filler, [0, 1)")
    per_key_rpm: float | None = Field(default=None, ge=1, le=60_000, description="starting pace "
                                      "per key in requests per minute, 1..60000 (default: "
                                      "unpaced until rate limited)")
    jitter: float = Field(default=0.5, ge=0, le=1, description="relative jitter of the pace, "
                          "0..1")
    max_per_key: int | None = Field(default=None, ge=1, le=10**9, description="queries a key "
                                    "sends before it is retired, 1..10^9 (default: no cap)")
    slowdown: float = Field(default=2.0, ge=1, le=10, description="pace factor after a ban or a "
                            "rate limit, 1..10")
    per_key_batch: int = Field(default=8, ge=1, le=1024, description="queries per key per "
                               "round, 1..1024")
    temperature: Temperature = Field(
        default=0.0, ge=0, le=2, description="sampling temperature, 0 or 0.01..2")
    max_tokens: int | None = Field(
        default=None, ge=1, le=4096, description="output tokens per answer, 1..4096 (default: "
        "the task's answer length)")
    patience: int = Field(default=3, ge=1, le=1000, description="rounds without an answer "
                          "before giving up, 1..1000")
    adapt: bool = Field(default=False, description="choose the per-key cap and pace under "
                        "the thresholds of the defenses the attacker knows of (the attack's "
                        "`knows:` in the scenario): a detector's min_queries and volume "
                        "limit, a rate limit's requests per minute")


SAFETY = 0.9
"""An adapted pace stays at this share of a known rate threshold."""


def adapted(defenses: list[tuple[str, dict[str, Any]]]) -> tuple[int | None, float | None,
                                                                  list[str]]:
    """The per-key cap and pace (requests per minute) that keep each key under the known
    thresholds of ``defenses`` (name, params; empty params: only the kind is known, so the
    kind's default parameters are assumed), and why."""
    from extractbench.defenses import DEFENSES

    cap: int | None = None
    rpm: float | None = None
    why: list[str] = []
    for name, params in defenses:
        try:
            model = DEFENSES.params_model(name)
            full = model(**params).model_dump() if model is not None else {}
        except Exception:  # an unknown or custom defense: nothing to adapt to
            continue
        if name == "detector":
            # a key is tested from its min_queries-th prompt on: stay below it
            cap = min(cap or 10**9, int(full["min_queries"]) - 1)
            if full.get("volume_total"):
                cap = min(cap, int(full["volume_total"]) - 1)
            rpm = min(rpm or 1e9, SAFETY * full["volume_max"] * 60.0 / full["volume_window_s"])
            why.append(f"detector: under min_queries {full['min_queries']} and volume "
                       f"{full['volume_max']} per {full['volume_window_s']:g} s")
        elif name == "rate-limit" and full.get("requests_per_minute"):
            rpm = min(rpm or 1e9, SAFETY * float(full["requests_per_minute"]))
            why.append(f"rate-limit: under {full['requests_per_minute']:g} requests per minute")
    return cap, rpm, why


class Stealth:
    """Many keys, paced, paraphrased, mixed with filler; see the module docstring."""

    def __init__(self, paraphrase: float = 0.5, benign_share: float = 0.2,
                 per_key_rpm: float | None = None, jitter: float = 0.5,
                 max_per_key: int | None = None, slowdown: float = 2.0,
                 per_key_batch: int = 8, temperature: float = 0.0,
                 max_tokens: int | None = None, patience: int = 3,
                 adapt: bool = False) -> None:
        for name, v in (("paraphrase", paraphrase), ("jitter", jitter)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"stealth: {name} must be in [0, 1], got {v}")
        if not 0.0 <= benign_share < 1.0:
            raise ValueError(f"stealth: benign_share must be in [0, 1), got {benign_share}")
        if per_key_rpm is not None and per_key_rpm <= 0:
            raise ValueError("stealth: per_key_rpm must be positive")
        if max_per_key is not None and max_per_key < 1:
            raise ValueError("stealth: max_per_key must be at least 1")
        if slowdown < 1.0 or per_key_batch < 1:
            raise ValueError("stealth: slowdown must be >= 1 and per_key_batch >= 1")
        self.paraphrase, self.benign_share = paraphrase, benign_share
        self.interval = 60.0 / per_key_rpm if per_key_rpm else 0.0
        self.jitter, self.max_per_key, self.slowdown = jitter, max_per_key, slowdown
        self.per_key_batch, self.temperature = per_key_batch, temperature
        self.max_tokens, self.patience = max_tokens, patience
        self.adapt = adapt

    async def run(self, ctx: AttackContext) -> str:
        if self.adapt:
            cap, rpm, why = adapted(ctx.defenses)
            if cap is not None:
                self.max_per_key = min(self.max_per_key or cap, cap)
            if rpm is not None:
                self.interval = max(self.interval, 60.0 / rpm)
            ctx.oracle.note("stealth: adapted to the known defenses",
                            max_per_key=self.max_per_key,
                            per_key_rpm=60.0 / self.interval if self.interval else None,
                            why=why or ["no known defense to adapt to"])
        order = ctx.sendable(ctx.pool)
        ctx.rng.shuffle(order)
        filler = ctx.sendable(ctx.benign_like or GENERIC_FILLER)
        keys = [_KeyState(i, self.interval) for i in range(len(ctx.oracle.key_ids))]
        by_id = {kid: keys[i] for i, kid in enumerate(ctx.oracle.key_ids)}
        tracker = Tracker(ctx, self.patience)
        max_tokens = self.max_tokens or ctx.max_tokens
        ctx.oracle.note("stealth: campaign plan", keys=len(keys), paraphrase=self.paraphrase,
                        benign_share=self.benign_share, filler=len(filler))
        quality = _Quality(self.paraphrase)
        queue = iter(order)
        while True:
            live = [k for k in keys if k.retired is None]
            if not live:
                return tracker.stop("every key retired")
            plan = self._plan(ctx, live, queue, filler, quality.share)
            if not any(question is not None for _, _, question in plan):
                return "attack pool exhausted"
            outcomes = await asyncio.gather(*(self._one(ctx, k, p, max_tokens)
                                              for k, p, _ in plan))
            rate_limited: set[int] = set()
            for (k, sent_prompt, question), o in zip(plan, outcomes, strict=True):
                k.sent += o.ok or o.attempts > 0
                if o.ok:
                    if o.attempts > 1:
                        rate_limited.add(k.index)
                    if question is None:
                        ctx.train_on(o.index, None)  # filler: not a training pair
                        continue
                    reworded = question != sent_prompt
                    complete = o.finish_reason != "length"
                    quality.add(reworded, complete)
                    if reworded:  # train on the question the student will be asked
                        ctx.train_on(o.index, question)
                        if not complete:
                            quality.cut_off.append(o.index)
                elif o.error_type == "rate_limit":
                    rate_limited.add(k.index)
                elif o.error_type in ("auth", "permission") and o.key_id is not None:
                    self._retire(ctx, by_id[o.key_id], keys, f"refused ({o.error_type})")
            quality.adjust(ctx)
            for k in live:
                if self.max_per_key is not None and k.sent >= self.max_per_key and not k.retired:
                    k.retired = "at its per-key cap"
                if k.index in rate_limited:
                    k.interval = max(0.05, k.interval * self.slowdown)
                else:
                    k.interval = max(k.base, k.interval * 0.9)
            stop = tracker.update(outcomes)
            if stop is not None:
                return stop

    def _plan(self, ctx: AttackContext, live: list[_KeyState], queue: Iterator[str],
              filler: list[str], share: float) -> list[tuple[_KeyState, str, str | None]]:
        """One round: (key, prompt to send, pool question or ``None`` for filler), shuffled."""
        plan: list[tuple[_KeyState, str, str | None]] = []
        for k in live:
            room = self.per_key_batch
            if self.max_per_key is not None:
                room = min(room, self.max_per_key - k.sent)
            for _ in range(room):
                if filler and ctx.rng.random() < self.benign_share:
                    plan.append((k, ctx.rng.choice(filler), None))
                    continue
                question = next(queue, None)
                if question is None:
                    break
                sent = question
                if ctx.rng.random() < share:
                    candidate = paraphrase(question, ctx.rng)
                    sent = candidate if ctx.may_send(candidate) else question
                plan.append((k, sent, question))
        ctx.rng.shuffle(plan)
        return plan

    async def _one(self, ctx: AttackContext, key: _KeyState, prompt: str,
                   max_tokens: int) -> QueryOutcome:
        """One query on ``key``, after waiting for the key's next (jittered) slot: on a
        simulated clock the key's simulated time waits the gap (no wall-clock sleep, so the
        order of a key's queries does not depend on how fast the machine is)."""
        now = time.monotonic()
        start = max(now, key.next_at)
        gap = key.interval * (1 + self.jitter * (2 * ctx.rng.random() - 1))
        simulated = getattr(ctx.oracle, "sim", None) is not None
        if simulated:
            try:
                return await ctx.oracle.query(prompt, key_index=key.index,
                                              max_tokens=max_tokens,
                                              temperature=self.temperature, pace_s=gap)
            except BudgetExhausted as e:
                assert e.failure is not None
                return e.failure
        key.next_at = start + gap
        if start > now:
            await asyncio.sleep(start - now)
        try:
            return await ctx.oracle.query(prompt, key_index=key.index, max_tokens=max_tokens,
                                          temperature=self.temperature)
        except BudgetExhausted as e:
            assert e.failure is not None
            return e.failure

    def _retire(self, ctx: AttackContext, key: _KeyState, keys: list[_KeyState],
                why: str) -> None:
        if key.retired is not None:
            return
        key.retired = why
        ctx.oracle.note("stealth: key retired", key=ctx.oracle.key_ids[key.index], why=why)
        for k in keys:  # the defender is watching: everyone else goes slower
            if k.retired is None:
                k.interval = max(0.05, k.interval * self.slowdown)
                k.base = max(k.base, k.interval)



@ATTACKS.register("stealth", params=StealthParams)
def make_stealth(**params: Any) -> Stealth:
    """Spread over many keys, paced, paraphrased, mixed with benign-looking filler."""
    return Stealth(**params)
