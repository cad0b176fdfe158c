"""``active``: student-guided query selection, in rounds.

Idea: instead of a random sample, the attacker spends its budget in rounds. The first round
is a random sample of the pool (a ``first`` share of the budget). After each round it trains a
cheap *probe* student on everything harvested so far and scores unsent pool prompts by

- **uncertainty**: the probe's mean negative log-probability of its own greedy answer (high =
  the student is unsure there), and
- **coverage**: how new the prompt's words and numbers are among the prompts already sent
  (entities, operands, label words: ``mean(1 / (1 + times seen))`` over the prompt's word
  features),

ranked and mixed as ``(1 - coverage_weight) * rank(uncertainty) + coverage_weight *
rank(novelty)``. It picks the best in sub-batches, updating coverage after each, so a round is
diverse. The probe is deliberately small (one layer, ``d_model`` 32, 100 steps of 32) so a
round costs a few CPU seconds; the real student is trained on the full harvest afterwards.

Models: Pal et al., *ActiveThief* (AAAI 2020) and Chandrasekaran et al., *Exploring
Connections Between Active Learning and Model Extraction* (USENIX Security 2020) for
uncertainty-driven extraction; the k-center / coverage view of Sener & Savarese, *Active
Learning for Convolutional Neural Networks: A Core-Set Approach* (ICLR 2018).

Adapts/stops: as every attack (budget, dead keys, blocked); when the budget turns out larger
than estimated (token and dollar budgets are reserved at their worst case), extra rounds run
until it binds or the pool is spent.

Parameters: ``rounds`` (planned rounds, default 4), ``first`` (share of the budget for the
random first round, default 0.25), ``candidates`` (pool prompts scored per round, at least
twice the round size, default 512), ``coverage_weight`` (default 0.5), ``probe_steps``
(default 100), ``probe_d_model`` (default 32), ``batch`` (queries in flight, default 32),
``temperature`` (default 0), ``max_tokens`` (default: the task's answer length),
``patience`` (default 3).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from extractbench.reference.config import LMConfig
from extractbench.registry import PluginParams, rule_error
from extractbench.types import SamplingParams

from .base import ATTACKS, AttackContext, Temperature, Tracker, mean_bytes, queries_left

if TYPE_CHECKING:  # torch loads when the attack runs, not when it is listed or validated
    from extractbench.reference.lm import TinyLM
    from extractbench.reference.training import Example

_WORD = re.compile(r"\w+")


def features(prompt: str) -> set[str]:
    """Word and number features of a prompt (what coverage counts)."""
    return set(_WORD.findall(prompt.lower()))


def ranks(values: list[float]) -> list[float]:
    """Each value's rank scaled to [0, 1] (ties share the lower rank)."""
    if len(values) < 2:
        return [1.0] * len(values)
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    prev, rank = None, 0
    for pos, i in enumerate(order):
        if values[i] != prev:
            rank, prev = pos, values[i]
        out[i] = rank / (len(values) - 1)
    return out


def uncertainty(model: TinyLM, prompts: list[str], max_tokens: int) -> list[float]:
    """Mean negative log-probability of the model's greedy answer per prompt (an empty answer
    counts as the most uncertain)."""
    from extractbench.reference.generation import generate

    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, top_logprobs=0)
    out: list[float] = []
    for s in range(0, len(prompts), 256):
        for g in generate(model, prompts[s : s + 256], params):
            lps = [t.logprob for t in g.logprobs or []]
            out.append(-sum(lps) / len(lps) if lps else math.inf)
    return out


class ActiveParams(PluginParams):
    """The parameters of ``active``."""

    rounds: int = Field(default=4, ge=1, le=100, description="planned rounds, 1..100")
    first: float = Field(default=0.25, gt=0, le=1, description="share of the budget for the "
                         "random first round, (0, 1]")
    candidates: int = Field(default=512, ge=1, le=100_000, description="pool prompts scored per "
                            "round, 1..100000 (at least twice the round size)")
    coverage_weight: float = Field(default=0.5, ge=0, le=1, description="weight of novelty "
                                   "against uncertainty in the ranking, 0..1")
    probe_steps: int = Field(default=100, ge=1, le=1000, description="training steps of the "
                             "probe student each round, 1..1000")
    probe_d_model: int = Field(default=32, ge=8, le=256, description="width of the probe "
                               "student, 8..256 (even)")
    batch: int = Field(default=32, ge=1, le=1024, description="queries in flight, 1..1024")
    temperature: Temperature = Field(
        default=0.0, ge=0, le=2, description="sampling temperature, 0 or 0.01..2")
    max_tokens: int | None = Field(
        default=None, ge=1, le=4096, description="output tokens per answer, 1..4096 (default: "
        "the task's answer length)")
    patience: int = Field(default=3, ge=1, le=1000, description="rounds without an answer "
                          "before giving up, 1..1000")

    @model_validator(mode="after")
    def _rules(self) -> ActiveParams:
        if self.probe_d_model % 2:
            raise rule_error("probe_d_model", f"must be even, got {self.probe_d_model}")
        return self


class Active:
    """Rounds of uncertainty- and coverage-driven picks; see the module docstring."""

    def __init__(self, rounds: int = 4, first: float = 0.25, candidates: int = 512,
                 coverage_weight: float = 0.5, probe_steps: int = 100, probe_d_model: int = 32,
                 batch: int = 32, temperature: float = 0.0, max_tokens: int | None = None,
                 patience: int = 3) -> None:
        if rounds < 1 or batch < 1 or candidates < 1 or probe_steps < 1:
            raise ValueError("active: rounds, batch, candidates and probe_steps must be >= 1")
        if not 0.0 < first <= 1.0:
            raise ValueError(f"active: first must be in (0, 1], got {first}")
        if not 0.0 <= coverage_weight <= 1.0:
            raise ValueError(f"active: coverage_weight must be in [0, 1], got {coverage_weight}")
        if probe_d_model < 8 or probe_d_model % 2:
            raise ValueError("active: probe_d_model must be an even number >= 8")
        self.rounds, self.first, self.candidates = rounds, first, candidates
        self.coverage_weight, self.probe_steps = coverage_weight, probe_steps
        self.probe_cfg = LMConfig(d_model=probe_d_model, n_layers=1, n_heads=2,
                                  d_ff=2 * probe_d_model)
        self.batch, self.temperature, self.max_tokens = batch, temperature, max_tokens
        self.patience = patience

    async def run(self, ctx: AttackContext) -> str:
        from extractbench.reference.training import Example

        unsent = ctx.sendable(ctx.pool)
        ctx.rng.shuffle(unsent)
        max_tokens = self.max_tokens or ctx.max_tokens
        size = mean_bytes(unsent)
        tracker = Tracker(ctx, self.patience)
        seen: Counter[str] = Counter()
        harvest: list[Example] = []
        planned = queries_left(ctx, size, max_tokens)
        r = 0
        while unsent:
            left = queries_left(ctx, size, max_tokens)
            if r == 0:
                n = math.ceil(planned * self.first)
            elif r < self.rounds:
                n = math.ceil(left / (self.rounds - r))
            else:  # the budget went further than its worst case: spend the rest
                n = max(left, self.batch)
            n = min(max(1, n), len(unsent))  # at least one: the oracle says whether it fits
            if r == 0 or not harvest or left == 0:  # (no probe for a budget check)
                picks = unsent[:n]
            else:
                picks = self._select(ctx, harvest, unsent, seen, n, max_tokens, r)
            chosen = set(picks)
            unsent = [p for p in unsent if p not in chosen]
            for start in range(0, len(picks), self.batch):
                chunk = picks[start : start + self.batch]
                outcomes = await ctx.oracle.query_many(chunk, max_tokens=max_tokens,
                                                       temperature=self.temperature)
                for p in chunk:
                    seen.update(features(p))
                harvest.extend(Example(o.prompt, o.text) for o in outcomes if o.ok)
                stop = tracker.update(outcomes)
                if stop is not None:
                    return stop
            r += 1
        return "attack pool exhausted"

    def _select(self, ctx: AttackContext, harvest: list[Example], unsent: list[str],
                seen: Counter[str], n: int, max_tokens: int, r: int) -> list[str]:
        """Train the probe on the harvest and pick ``n`` prompts among candidates."""
        import torch

        from extractbench.reference.lm import TinyLM
        from extractbench.reference.training import TrainConfig, train

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            torch.manual_seed(ctx.rng.randrange(2**31))
            probe = TinyLM(self.probe_cfg)
            cfg = TrainConfig(steps=self.probe_steps, batch_size=32, lr=3e-3, warmup=10,
                              seed=ctx.rng.randrange(2**31))
            losses = train(probe, harvest, cfg)
            cands = unsent[: max(self.candidates, 2 * n)]
            unsure = uncertainty(probe, cands, max_tokens)
        finally:
            torch.set_num_threads(threads)
        finite = [u for u in unsure if math.isfinite(u)]
        cap = max(finite, default=0.0) + 1.0
        r_unsure = ranks([u if math.isfinite(u) else cap for u in unsure])
        feats = [features(c) for c in cands]
        counts = Counter(seen)
        picked: list[int] = []
        left = set(range(len(cands)))
        w = self.coverage_weight
        step = max(1, min(self.batch, n))
        while len(picked) < n and left:
            idx = sorted(left)
            novelty = [sum(1 / (1 + counts[f]) for f in feats[i]) / max(1, len(feats[i]))
                       for i in idx]
            r_new = ranks(novelty)
            score = {i: (1 - w) * r_unsure[i] + w * rn for i, rn in zip(idx, r_new, strict=True)}
            best = sorted(idx, key=lambda i: -score[i])[: min(step, n - len(picked))]
            for i in best:
                picked.append(i)
                left.discard(i)
                counts.update(feats[i])
        mean_rank = sum(r_unsure[i] for i in picked) / max(1, len(picked))
        ctx.oracle.note("active: round picked", round=r, picked=len(picked),
                        candidates=len(cands), probe_loss=losses[-1] if losses else None,
                        mean_uncertainty_rank=mean_rank)
        return [cands[i] for i in picked]


@ATTACKS.register("active", params=ActiveParams)
def make_active(**params: Any) -> Active:
    """Rounds of queries picked where a cheap probe student is least certain or least covered."""
    return Active(**params)
