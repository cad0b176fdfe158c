"""``vote``: ask each pool prompt ``asks`` times, keep only answers a strict majority agrees on.

Idea: output perturbation makes some answers wrong, and an adaptive student filters them out
before training. Each pool prompt is sent ``asks`` (k) times — the same prompt re-sampled
(``vary: sample``), or in k different wordings (``vary: wording``: the prompt as it is, then
neutral lead-ins such as "Quick question: " that do not change what it asks). The final
answers the task's own answer reader extracts from the k answers are voted on: when more than
k / 2 of them name one answer, the student trains on **pool prompt -> one answer text that
names it** (the most common such text, the earliest on a tie); otherwise the prompt is dropped
and none of its k answers is trained on. The filtering goes through the harvest's
training-prompt notes (:meth:`~attacks.base.AttackContext.train_on`): after each round the
winning query is noted with its pool prompt, every other answer with ``None``.

What it defeats and what it does not:

- a raised sampling temperature (``perturb``'s ``temperature``): samples are independent, so
  the majority is the teacher's most likely answer more often than one sample is;
- poison chosen by the prompt's text (``perturb``'s ``poison_fraction``, ``misinformation``):
  each wording is poisoned or not on its own draw, so ``vary: wording`` out-votes it.
  ``vary: sample`` does not: the same text gets the same wrong answer every time (see
  :mod:`extractbench.defenses.poison`). ``misinformation`` poisons by how far a prompt is from
  benign traffic, and a lead-in can move a prompt either way: not measured here.

The cost is the honest one: a budget of N queries labels about N / k pool prompts, fewer but
cleaner. *Models* an adaptive student against output-perturbation defenses such as
*Prediction Poisoning* (Orekondy et al., ICLR 2020), with self-consistency voting (Wang et
al., ICLR 2023). Measured on classification it loses to ``random-pool`` (docs/attacks.md).

Adapts/stops: a prompt is only started when the remaining budget covers all k of its asks
(:func:`~attacks.base.queries_left`), so no budget goes on a vote that cannot finish; it stops
when that is no longer so, when every key is refused, or after ``patience`` rounds without an
answer. A failed ask counts as a vote for nothing (the majority is over k, not over the
answers that came back).

Parameters: ``asks`` (queries per pool prompt, 2..8, default 3), ``vary`` (``wording`` |
``sample``, default ``wording``), ``temperature`` (default 0; ``vary: sample`` needs at least
0.01), ``max_tokens`` (default: the task's answer length), ``batch`` (pool prompts per round,
default 16), ``patience`` (default 3).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from extractbench.registry import PluginParams, rule_error
from extractbench.tasks.answers import final_part, norm

from .base import (
    ATTACKS,
    MIN_SAMPLED_TEMPERATURE,
    AttackContext,
    Temperature,
    Tracker,
    mean_bytes,
    queries_left,
)

if TYPE_CHECKING:
    from extractbench.campaign.oracle import QueryOutcome

LEADS = ("", "Quick question: ", "Please help: ", "I was wondering: ", "Hi! ",
         "Hi! Quick question: ", "Hi! Please help: ", "Hi! I was wondering: ")
"""The wordings of ``vary: wording``: the prompt as it is, then lead-ins that ask nothing
(stealth's greetings and their combinations; the task families' content keys and
:func:`~extractbench.tasks.wording.normalise` read through them, and none is a benign
customer's lead). Lead-ins only: a closing "Thanks!" after a classification ticket costs the
reference teacher most of its accuracy (measured: 0.29-0.37 against 1.0)."""

MAX_ASKS = 16
"""Most queries per pool prompt (``vary: wording`` has ``len(LEADS)`` wordings)."""

Reader = Callable[[str], str | None]


def answer_reader(family: str) -> Reader:
    """The final-answer reader of task family ``family`` (its ``extract``, which the built-in
    families define without parameters), or, for a family that cannot be built without
    parameters (a user's JSONL task), the cleaned final part of the text."""
    from extractbench.tasks import TASKS

    try:
        task = TASKS.get(family)(0, {"benign": 1})
    except (LookupError, TypeError, ValueError):
        return generic_answer
    return task.extract


def generic_answer(text: str) -> str | None:
    """The text after any reasoning block, cleaned and case-folded (``None`` when empty or
    cut off inside the reasoning)."""
    rest = final_part(text)
    out = None if rest is None else norm(rest)
    return out or None


def vote(answers: Sequence[str], read: Reader, asks: int) -> int | None:
    """Position in ``answers`` of the answer to train on: one naming the final answer that
    more than ``asks / 2`` of them name (the most common text among those, the earliest on a
    tie); ``None`` when no answer has that strict majority (unread answers vote for nothing,
    and so do the asks that got no answer)."""
    finals = [read(a) for a in answers]
    counts = Counter(f for f in finals if f is not None)
    if not counts:
        return None
    best, n = counts.most_common(1)[0]
    if 2 * n <= asks:
        return None
    texts = Counter(a for a, f in zip(answers, finals, strict=True) if f == best)
    top = max(texts.values())
    return next(i for i, (a, f) in enumerate(zip(answers, finals, strict=True))
                if f == best and texts[a] == top)


def worded(prompt: str, lead: str) -> str:
    """``prompt`` after ``lead`` (its first letter lowercased after a lead-in, as a person
    would write it, unless it starts an acronym)."""
    if lead and prompt[:1].isupper() and not prompt[1:2].isupper():
        prompt = prompt[0].lower() + prompt[1:]
    return lead + prompt


class VoteParams(PluginParams):
    """The parameters of ``vote``."""

    asks: int = Field(default=3, ge=2, le=MAX_ASKS, description="queries per pool prompt, "
                      f"2..{MAX_ASKS} (at most {len(LEADS)} with vary: wording)")
    vary: Literal["wording", "sample"] = Field(
        default="wording", description="what changes between the asks: the prompt's wording "
        "(out-votes poison chosen by the prompt) or only the sample (needs a temperature)")
    temperature: Temperature = Field(
        default=0.0, ge=0, le=2, description="sampling temperature, 0 or 0.01..2 (vary: "
        "sample needs at least 0.01)")
    max_tokens: int | None = Field(
        default=None, ge=1, le=4096, description="output tokens per answer, 1..4096 (default: "
        "the task's answer length)")
    batch: int = Field(default=16, ge=1, le=1024, description="pool prompts per round, "
                       "1..1024 (each sends asks queries)")
    patience: int = Field(default=3, ge=1, le=1000, description="rounds without an answer "
                          "before giving up, 1..1000")

    @model_validator(mode="after")
    def _rules(self) -> VoteParams:
        problem = _rule_problem(self.asks, self.vary, self.temperature)
        if problem is not None:
            raise rule_error(*problem)
        return self


def _rule_problem(asks: int, vary: str, temperature: float) -> tuple[str, str] | None:
    if vary == "sample" and temperature == 0:
        return ("temperature", "vary: sample re-asks the same prompt, and greedy answers "
                "would all be the same; set a temperature of at least 0.01 (e.g. 0.7) or "
                "use vary: wording")
    if vary == "wording" and asks > len(LEADS):
        return ("asks", f"vary: wording has {len(LEADS)} wordings, so at most "
                f"{len(LEADS)} asks; got {asks}")
    return None


@dataclass
class _Group:
    prompt: str
    """The pool prompt (what the student trains on)."""
    sent: list[str]
    """The ``asks`` prompts sent for it."""


class Vote:
    """k asks per pool prompt, majority-voted before training; see the module docstring."""

    def __init__(self, asks: int = 3, vary: str = "wording", temperature: float = 0.0,
                 max_tokens: int | None = None, batch: int = 16, patience: int = 3) -> None:
        if not isinstance(asks, int) or not 2 <= asks <= MAX_ASKS:
            raise ValueError(f"vote: asks must be an integer in [2, {MAX_ASKS}], got {asks!r}")
        if vary not in ("wording", "sample"):
            raise ValueError(f"vote: vary must be wording or sample, got {vary!r}")
        if not 0.0 <= temperature <= 2.0 or 0 < temperature < MIN_SAMPLED_TEMPERATURE:
            raise ValueError(f"vote: temperature must be 0 or in [{MIN_SAMPLED_TEMPERATURE}, "
                             f"2], got {temperature}")
        problem = _rule_problem(asks, vary, temperature)
        if problem is not None:
            raise ValueError(f"vote: {problem[0]}: {problem[1]}")
        if batch < 1 or patience < 1 or (max_tokens is not None and max_tokens < 1):
            raise ValueError("vote: batch, patience and max_tokens must be at least 1")
        self.asks, self.vary, self.temperature = asks, vary, temperature
        self.max_tokens, self.batch, self.patience = max_tokens, batch, patience

    def _group(self, ctx: AttackContext, prompt: str) -> _Group | None:
        if self.vary == "sample":
            return _Group(prompt, [prompt] * self.asks)
        leads = list(LEADS[1:])
        ctx.rng.shuffle(leads)
        sent = ctx.sendable([prompt, *(worded(prompt, lead) for lead in leads)])
        if len(sent) < self.asks:
            return None
        return _Group(prompt, sent[: self.asks])

    async def run(self, ctx: AttackContext) -> str:
        read = answer_reader(ctx.task)
        order = ctx.sendable(ctx.pool)
        ctx.rng.shuffle(order)
        max_tokens = self.max_tokens or ctx.max_tokens
        tracker = Tracker(ctx, self.patience)
        ctx.oracle.note("vote: campaign plan", asks=self.asks, vary=self.vary,
                        temperature=self.temperature, pool=len(order),
                        reader="task" if read is not generic_answer else "generic",
                        known_defenses=[name for name, _ in ctx.defenses])
        tally: Counter[str] = Counter()

        def done(reason: str) -> str:
            ctx.oracle.note("vote: filtered", **dict(tally))
            return reason

        at = 0
        while at < len(order):
            groups: list[_Group] = []
            while len(groups) < self.batch and at < len(order):
                g = self._group(ctx, order[at])
                at += 1
                if g is not None:
                    groups.append(g)
                else:
                    tally["unsendable"] += 1
            if not groups:
                break
            fit = queries_left(ctx, mean_bytes([p for g in groups for p in g.sent]),
                               max_tokens) // self.asks
            if fit == 0:
                return done(tracker.stop(f"budget exhausted (less than one vote of "
                                         f"{self.asks} asks left)"))
            if fit < len(groups):
                at -= len(groups) - fit  # not started: back to the queue
                groups = groups[:fit]
            outcomes = await ctx.oracle.query_many(
                [p for g in groups for p in g.sent], max_tokens=max_tokens,
                temperature=self.temperature)
            for i, g in enumerate(groups):
                mine = outcomes[i * self.asks : (i + 1) * self.asks]
                self._settle(ctx, g, mine, read, tally)
            stop = tracker.update(outcomes)
            if stop is not None:
                return done(stop)
        return done("attack pool exhausted")

    def _settle(self, ctx: AttackContext, group: _Group, outcomes: Sequence[QueryOutcome],
                read: Reader, tally: Counter[str]) -> None:
        """Vote on one pool prompt's answers and note what each trains."""
        answered = [o for o in outcomes if o.ok]
        if not answered:
            tally["unanswered"] += 1
            return
        win = vote([o.text for o in answered], read, self.asks)
        tally["kept" if win is not None else "no_majority"] += 1
        for j, o in enumerate(answered):
            ctx.train_on(o.index, group.prompt if j == win else None)


@ATTACKS.register("vote", params=VoteParams)
def make_vote(**params: Any) -> Vote:
    """Ask each pool prompt k times (re-sampled or reworded), train on the majority answer."""
    return Vote(**params)
