"""``synthetic``: the attacker who has no data.

Idea: no access to the ``attack_pool``. The attacker knows only a handful of public example
prompts of the task (``ctx.seed_prompts``, e.g. from a task description) and manufactures its
own queries from them:

- **templates**: each example becomes a frame with typed slots — numbers (refilled with random
  numbers of the same width), operators (``+ - * /`` seen in the examples) and capitalised
  names mid-sentence (swapped among the names seen) — and frames are refilled at random;
- **recombination**: the first sentence of one frame joined to the rest of another (new
  phrasings), and for free text without slots, word-level crossover of two examples between
  their shared prefix and suffix;
- **self-instruct** (``mode: self-instruct``): the endpoint itself is asked to write new
  questions like the examples; usable ones (one line, a plausible length, new) are queued and
  join the examples. When the endpoint writes no usable questions (a narrow model, a refusal)
  the attack notes it and falls back to templates.

Models: Truong et al., *Data-Free Model Extraction* (CVPR 2021) and the synthetic-query
setting of Krishna et al., *Thieves on Sesame Street* (ICLR 2020) for the no-data attacker;
Wang et al., *Self-Instruct* (ACL 2023) / Alpaca-style generation for asking the teacher to
write its own training questions; industry reports of "templated and structured question
sequences" in distillation campaigns.

Held-out hygiene: generated prompts pass ``ctx.may_send`` (held-out prompts are dropped) and
are never repeated.

Parameters: ``mode`` (``template`` default, or ``self-instruct``), ``recombine`` (share of
template queries with a recombined frame, default 0.25), ``batch`` (default 32),
``instruct_share`` (self-instruct: share of queries spent asking for questions, default 0.5),
``probe`` (self-instruct: questions asked before judging the yield, default 8),
``min_yield`` (self-instruct: usable share below which it falls back, default 0.25),
``temperature`` (answers, default 0), ``max_tokens`` (default: the task's answer length),
``patience`` (rounds without an answer before giving up, default 3).
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from extractbench.campaign.oracle import BudgetExhausted, QueryOutcome
from extractbench.registry import PluginParams

from .base import ATTACKS, AttackContext, Temperature, Tracker

_PIECE = re.compile(r"\d+|(?<= )[+\-*/×÷](?= )|[A-Z][a-z]+(?: [A-Z][a-z]+)*"
                    r"|[^\dA-Z+\-*/×÷]+|.", re.DOTALL)
_PLAIN = " ?.,!:;'\"-+*/=()%"
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")

Part = tuple[Literal["lit", "num", "op", "ent"], str]


@dataclass(frozen=True)
class Frame:
    """A prompt with typed slots: literal text, numbers (value kept for its width), operators
    and names."""

    parts: tuple[Part, ...]

    @property
    def slots(self) -> int:
        return sum(kind != "lit" for kind, _ in self.parts)


def parse(prompt: str) -> Frame:
    """Split a prompt into literal text and slots."""
    parts: list[Part] = []
    for m in _PIECE.finditer(prompt):
        s = m.group(0)
        before = prompt[: m.start()].rstrip()
        if s.isdigit():
            parts.append(("num", s))
        elif s in "+-*/×÷" and len(s) == 1 and m.start() > 0:
            parts.append(("op", s))
        elif s[:1].isupper() and before and before[-1] not in ".?!:" and s != "I":
            parts.append(("ent", s))
        else:
            parts.append(("lit", s))
    return Frame(tuple(parts))


class Generator:
    """Makes new prompts from example prompts (templates, recombination, crossover)."""

    def __init__(self, examples: list[str], rng: random.Random, recombine: float) -> None:
        self.rng = rng
        self.recombine = recombine
        self.frames: list[Frame] = []
        self.ops: list[str] = []
        self.names: list[str] = []
        self.texts: list[str] = []
        for e in examples:
            self.add(e)

    def add(self, example: str) -> None:
        frame = parse(example)
        self.texts.append(example)
        self.frames.append(frame)
        for kind, value in frame.parts:
            if kind == "op" and value not in self.ops:
                self.ops.append(value)
            if kind == "ent" and value not in self.names:
                self.names.append(value)

    def make(self) -> str:
        rng = self.rng
        frame = rng.choice(self.frames)
        if frame.slots == 0:
            return self._crossover()
        if len(self.frames) > 1 and rng.random() < self.recombine:
            frame = self._recombined(frame, rng.choice(self.frames))
        return "".join(self._fill(kind, value) for kind, value in frame.parts)

    def _fill(self, kind: str, value: str) -> str:
        rng = self.rng
        if kind == "num":
            width = len(value)
            lo = 10 ** (width - 1) if width > 1 else 0
            return str(rng.randrange(lo, 10**width))
        if kind == "op":
            return rng.choice(self.ops)
        if kind == "ent":
            return rng.choice(self.names)
        return value

    def _recombined(self, a: Frame, b: Frame) -> Frame:
        """The first sentence of ``a`` with the rest of ``b`` (``a`` itself unless both have
        more than one sentence)."""
        sa, sb = _sentences(a), _sentences(b)
        if len(sa) < 2 or len(sb) < 2:
            return a
        return Frame(tuple(p for s in [sa[0], *sb[1:]] for p in s))

    def _crossover(self) -> str:
        """Word-level crossover of two examples between their shared prefix and suffix."""
        rng = self.rng
        if len(self.texts) < 2:
            return self.texts[0]
        i, j = rng.sample(range(len(self.texts)), 2)
        a, b = self.texts[i].split(" "), self.texts[j].split(" ")
        pre = 0
        while pre < min(len(a), len(b)) - 1 and a[pre] == b[pre]:
            pre += 1
        suf = 0
        while suf < min(len(a), len(b)) - pre - 1 and a[-1 - suf] == b[-1 - suf]:
            suf += 1
        mid_a, mid_b = a[pre : len(a) - suf], b[pre : len(b) - suf]
        cut_a = rng.randrange(len(mid_a) + 1)
        cut_b = rng.randrange(len(mid_b) + 1)
        words = a[:pre] + mid_a[:cut_a] + mid_b[cut_b:] + a[len(a) - suf :]
        return " ".join(words)


def _sentences(frame: Frame) -> list[list[Part]]:
    """A frame's parts grouped by sentence (split inside literal text at . ? ! + space)."""
    out: list[list[Part]] = [[]]
    for kind, value in frame.parts:
        if kind != "lit":
            out[-1].append((kind, value))
            continue
        pieces = _SENTENCE_END.split(value)
        for i, piece in enumerate(pieces):
            if i:
                out.append([])
                piece = " " + piece
            if piece:
                out[-1].append(("lit", piece))
    return [s for s in out if s] or [[]]


def instruct_prompt(examples: list[str], rng: random.Random, k: int = 3) -> str:
    """Ask the endpoint to write one new question like ``k`` of the examples."""
    shown = rng.sample(examples, min(k, len(examples)))
    lines = "\n".join(f"{i + 1}. {e}" for i, e in enumerate(shown))
    return (f"Here are example questions:\n{lines}\n"
            "Write one new question of the same kind. Reply with the question only.")


def usable_question(text: str, examples: list[str]) -> str | None:
    """The first line of ``text`` when it looks like a new question of the examples' kind:
    plain text (90 % letters, digits, spaces and punctuation), three words or more, of a length
    near the examples', and new."""
    line = text.strip().split("\n")[0].strip().lstrip("0123456789. ").strip()
    mean = sum(len(e) for e in examples) / max(1, len(examples))
    if not (0.5 * mean <= len(line) <= 2.0 * mean) or line in examples:
        return None
    plain = sum(c.isascii() and (c.isalnum() or c in _PLAIN) for c in line)
    if plain < 0.9 * len(line) or len(line.split()) < 3 or not re.search(r"[A-Za-z]{2}", line):
        return None
    return line


async def _ask(ctx: AttackContext, prompt: str, max_tokens: int, seed: int) -> QueryOutcome:
    """One sampled question-writing query (each with its own seed, so answers differ)."""
    try:
        return await ctx.oracle.query(prompt, max_tokens=max_tokens, temperature=1.0, seed=seed)
    except BudgetExhausted as e:
        assert e.failure is not None
        return e.failure


class SyntheticParams(PluginParams):
    """The parameters of ``synthetic``."""

    mode: Literal["template", "self-instruct"] = Field(default="template", description="how "
                                                       "queries are made: templates, or asking "
                                                       "the endpoint to write questions")
    recombine: float = Field(default=0.25, ge=0, le=1, description="share of template queries "
                             "with a recombined frame, 0..1")
    batch: int = Field(default=32, ge=1, le=1024, description="queries per round, 1..1024")
    instruct_share: float = Field(default=0.5, ge=0, le=1, description="self-instruct: share of "
                                  "queries spent asking for questions, 0..1")
    probe: int = Field(default=8, ge=1, le=100_000, description="self-instruct: questions asked "
                       "before judging the yield, 1..100000")
    min_yield: float = Field(default=0.25, ge=0, le=1, description="self-instruct: usable share "
                             "below which it falls back to templates, 0..1")
    temperature: Temperature = Field(
        default=0.0, ge=0, le=2, description="sampling temperature of the answers, 0 or 0.01..2")
    max_tokens: int | None = Field(
        default=None, ge=1, le=4096, description="output tokens per answer, 1..4096 (default: "
        "the task's answer length)")
    patience: int = Field(default=3, ge=1, le=1000, description="rounds without an answer "
                          "before giving up, 1..1000")


class Synthetic:
    """Queries made up from a few public examples; see the module docstring."""

    def __init__(self, mode: Literal["template", "self-instruct"] = "template",
                 recombine: float = 0.25, batch: int = 32, instruct_share: float = 0.5,
                 probe: int = 8, min_yield: float = 0.25, temperature: float = 0.0,
                 max_tokens: int | None = None, patience: int = 3) -> None:
        if mode not in ("template", "self-instruct"):
            raise ValueError(f"synthetic: mode must be 'template' or 'self-instruct', got {mode!r}")
        for name, v in (("recombine", recombine), ("instruct_share", instruct_share),
                        ("min_yield", min_yield)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"synthetic: {name} must be in [0, 1], got {v}")
        if batch < 1 or probe < 1:
            raise ValueError("synthetic: batch and probe must be at least 1")
        self.mode, self.recombine, self.batch = mode, recombine, batch
        self.instruct_share, self.probe, self.min_yield = instruct_share, probe, min_yield
        self.temperature, self.max_tokens, self.patience = temperature, max_tokens, patience

    async def run(self, ctx: AttackContext) -> str:
        examples = [e for e in ctx.seed_prompts if e.strip()]
        if not examples:
            ctx.oracle.note("synthetic: no seed prompts; nothing to build queries from")
            return "no seed prompts"
        gen = Generator(examples, ctx.rng, self.recombine)
        tracker = Tracker(ctx, self.patience)
        sent: set[str] = set()
        queue: list[str] = []  # self-instructed questions waiting to be answered
        instruct = self.mode == "self-instruct"
        asked = usable = 0
        max_tokens = self.max_tokens or ctx.max_tokens
        while True:
            # ask for more questions while the queue of self-instructed ones is short
            n_ask = 0
            if instruct and len(queue) < self.batch:
                n_ask = max(1, round(self.batch * self.instruct_share))
            batch = queue[: self.batch - n_ask]
            queue = queue[len(batch) :]
            batch += self._fresh(gen, ctx, sent, self.batch - n_ask - len(batch))
            if not batch and not n_ask:
                ctx.oracle.note("synthetic: cannot make new prompts", sent=len(sent))
                return "synthetic prompts exhausted"
            sent.update(batch)
            outcomes = await ctx.oracle.query_many(batch, max_tokens=max_tokens,
                                                   temperature=self.temperature)
            if n_ask:
                room = min(96, 2 * max(len(e) for e in examples))
                ask_out = list(await asyncio.gather(*(
                    _ask(ctx, instruct_prompt(gen.texts, ctx.rng), room,
                         seed=ctx.rng.randrange(2**31))
                    for _ in range(n_ask))))
                outcomes += ask_out
                asked += len(ask_out)
                for o in ask_out:
                    if not o.ok:
                        continue
                    ctx.train_on(o.index, None)  # a question-writing answer is no training pair
                    q = usable_question(o.text, gen.texts)
                    if q is not None and q not in sent and ctx.may_send(q):
                        usable += 1
                        queue.append(q)
                        gen.add(q)
                if asked >= self.probe and usable < self.min_yield * asked:
                    instruct = False
                    ctx.oracle.note("synthetic: self-instruct yield too low; using templates",
                                    asked=asked, usable=usable)
            stop = tracker.update(outcomes)
            if stop is not None:
                return stop

    @staticmethod
    def _fresh(gen: Generator, ctx: AttackContext, sent: set[str], n: int) -> list[str]:
        """Up to ``n`` new sendable prompts (gives up after many repeats)."""
        out: list[str] = []
        tries = 0
        while len(out) < n and tries < 50 * max(1, n):
            tries += 1
            p = gen.make()
            if p and p not in sent and p not in out and ctx.may_send(p):
                out.append(p)
        return out


@ATTACKS.register("synthetic", params=SyntheticParams)
def make_synthetic(**params: Any) -> Synthetic:
    """No pool access: queries built from a few public examples (templates, self-instruct)."""
    return Synthetic(**params)
