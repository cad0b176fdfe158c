"""``cot-coercion``: ask for the working, harvest the reasoning.

Idea: the attacker sends pool prompts with a request for worked, step-by-step reasoning, so
each answer carries the
teacher's reasoning trace, not just its final answer. The student trains on *the bare
question -> reasoning + answer* (recorded with :meth:`~attacks.base.AttackContext.train_on`),
so at test time it reasons on held-out questions before answering. Traces are richer
supervision per query but cost more output tokens, so a token or dollar budget binds sooner.

Models: the chain-of-thought elicitation seen in reported distillation campaigns against
frontier reasoning models, and reasoning distillation in the literature: Hsieh et al.,
*Distilling Step-by-Step* (ACL Findings 2023), Ho et al., *Large Language Models Are Reasoning
Teachers* (ACL 2023), and DeepSeek-R1's distilled students (2025).

Adapts: after ``probe`` answers it measures how many carried reasoning (a response longer than
``2 x`` the task's bare answer room, in at least three words, counts as reasoning; a bare
answer or a degenerate "4444..." does not). Below ``min_reasoning`` — the
endpoint strips or refuses to show its working, or cannot produce it — it notes that and
switches to ``fallback``: ``bare`` (default: plain pool prompts with the short answer room,
which saves tokens) or ``keep`` (go on asking). Stops like every attack: budget, dead keys,
blocked.

Parameters: ``suffix`` (the reasoning request; default: the task's ``reasoning_suffix``, else
"Show your working step by step, then give the final answer."), ``strip_format`` (drop "answer
with ... only" instructions from the prompt before asking; default: only with the generic
suffix — a task's own suffix is appended to the prompt as the task defines it),
``max_tokens`` (room for the working; default: the task's ``reasoning_max_tokens``, else
8 x the answer length, <= 128),
``train_on`` (``question``: the bare prompt, default; ``sent``: the prompt as sent),
``probe`` (default 16), ``min_reasoning`` (default 0.2), ``fallback`` (``bare`` or ``keep``),
``batch`` (default 32), ``temperature`` (default 0), ``patience`` (default 3).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from extractbench.registry import PluginParams

from .base import ATTACKS, DEFAULT_REASONING_SUFFIX, AttackContext, Temperature, Tracker

_ONLY_SENTENCE = re.compile(r"(?:^|(?<=[.?!]))\s*(?:Answer|Reply|Respond|Give)\b[^.?!]*\bonly\b"
                            r"[^.?!]*[.?!]", re.IGNORECASE)
_ONLY_CLAUSE = re.compile(r",?\s+and\s+(?:answer|reply|respond|give)\b[^.?!]*\bonly\b",
                          re.IGNORECASE)


def strip_format(prompt: str) -> str:
    """The prompt without instructions that demand a bare answer ("Answer with the number
    only.", "... and answer with the number only")."""
    out = _ONLY_CLAUSE.sub("", _ONLY_SENTENCE.sub("", prompt)).strip()
    return out or prompt


def shows_working(text: str, answer_tokens: int) -> bool:
    """Whether a response looks like worked reasoning rather than a bare (or degenerate)
    answer: longer than twice the bare answer room, in at least three words."""
    return len(text.strip()) > 2 * answer_tokens and len(text.split()) >= 3


def coerce(prompt: str, suffix: str, strip: bool = True) -> str:
    """``prompt`` asking for worked reasoning."""
    body = strip_format(prompt) if strip else prompt.rstrip()
    return f"{body} {suffix}".strip()


class CotCoercionParams(PluginParams):
    """The parameters of ``cot-coercion``."""

    suffix: str | None = Field(default=None, description="the reasoning request appended to "
                               "each prompt (default: the task's own, else a generic one)")
    strip_format: bool | None = Field(default=None, description="drop 'answer with ... only' "
                                      "instructions first (default: only with the generic "
                                      "suffix)")
    max_tokens: int | None = Field(default=None, ge=1, le=4096, description="room for the "
                                   "working, 1..4096 (default: the task's "
                                   "reasoning_max_tokens, else 8 x the answer length, <= 128)")
    train_on: Literal["question", "sent"] = Field(default="question", description="what the "
                                                  "student learns from: the bare question or "
                                                  "the prompt as sent")
    probe: int = Field(default=16, ge=1, le=100_000, description="answers before judging "
                       "whether the endpoint shows its working, 1..100000")
    min_reasoning: float = Field(default=0.2, ge=0, le=1, description="share of answers with "
                                 "working below which it falls back, 0..1")
    fallback: Literal["bare", "keep"] = Field(default="bare", description="below min_reasoning: "
                                              "plain prompts (bare) or go on asking (keep)")
    batch: int = Field(default=32, ge=1, le=1024, description="prompts in flight per round, "
                       "1..1024")
    temperature: Temperature = Field(
        default=0.0, ge=0, le=2, description="sampling temperature, 0 or 0.01..2")
    patience: int = Field(default=3, ge=1, le=1000, description="rounds without an answer "
                          "before giving up, 1..1000")


class CotCoercion:
    """Pool prompts plus a request for step-by-step working; see the module docstring."""

    def __init__(self, suffix: str | None = None, strip_format: bool | None = None,
                 max_tokens: int | None = None, train_on: Literal["question", "sent"] = "question",
                 probe: int = 16, min_reasoning: float = 0.2,
                 fallback: Literal["bare", "keep"] = "bare", batch: int = 32,
                 temperature: float = 0.0, patience: int = 3) -> None:
        if train_on not in ("question", "sent"):
            raise ValueError(
                f"cot-coercion: train_on must be 'question' or 'sent', got {train_on!r}")
        if fallback not in ("bare", "keep"):
            raise ValueError(f"cot-coercion: fallback must be 'bare' or 'keep', got {fallback!r}")
        if not 0.0 <= min_reasoning <= 1.0:
            raise ValueError("cot-coercion: min_reasoning must be in [0, 1]")
        if batch < 1 or probe < 1:
            raise ValueError("cot-coercion: batch and probe must be at least 1")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError("cot-coercion: max_tokens must be at least 1")
        self.suffix, self.strip, self.max_tokens = suffix, strip_format, max_tokens
        self.train_on, self.probe, self.min_reasoning = train_on, probe, min_reasoning
        self.fallback, self.batch, self.temperature = fallback, batch, temperature
        self.patience = patience

    async def run(self, ctx: AttackContext) -> str:
        suffix = (self.suffix or ctx.reasoning_suffix or DEFAULT_REASONING_SUFFIX).strip()
        strip = self.strip if self.strip is not None else suffix == DEFAULT_REASONING_SUFFIX
        worked_tokens = self.max_tokens or ctx.worked_max_tokens
        order = ctx.sendable(ctx.pool)
        ctx.rng.shuffle(order)
        tracker = Tracker(ctx, self.patience)
        coercing, judged = True, False
        answered = with_reasoning = 0
        ctx.oracle.note("cot-coercion: asking for worked reasoning", suffix=suffix,
                        max_tokens=worked_tokens)
        for start in range(0, len(order), self.batch):
            chunk = order[start : start + self.batch]
            if coercing:
                sent = [coerce(p, suffix, strip) for p in chunk]
                keep = [(s, p) for s, p in zip(sent, chunk, strict=True) if ctx.may_send(s)]
                outcomes = await ctx.oracle.query_many(
                    [s for s, _ in keep], max_tokens=worked_tokens, temperature=self.temperature)
                for o, (_, question) in zip(outcomes, keep, strict=True):
                    if not o.ok:
                        continue
                    answered += 1
                    with_reasoning += shows_working(o.text, ctx.max_tokens)
                    if self.train_on == "question":
                        ctx.train_on(o.index, question)
            else:
                outcomes = await ctx.oracle.query_many(chunk, max_tokens=ctx.max_tokens,
                                                       temperature=self.temperature)
            stop = tracker.update(outcomes)
            if stop is not None:
                return stop
            if coercing and not judged and answered >= self.probe:
                judged = True
                share = with_reasoning / answered
                ctx.oracle.note("cot-coercion: reasoning share", share=share, answers=answered)
                if share < self.min_reasoning and self.fallback == "bare":
                    coercing = False
                    ctx.oracle.note("cot-coercion: the endpoint shows no working; "
                                    "falling back to bare prompts", share=share)
        return "attack pool exhausted"


@ATTACKS.register("cot-coercion", params=CotCoercionParams)
def make_cot_coercion(**params: Any) -> CotCoercion:
    """Asks for step-by-step working and trains the student on reasoning + answer."""
    return CotCoercion(**params)
