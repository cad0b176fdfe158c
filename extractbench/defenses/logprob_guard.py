"""``logprob-guard``: hide, cap, round or noise the token logprobs an endpoint returns, and
ignore ``logit_bias``.

The idea modelled: logprobs are soft labels. A student distilled on the teacher's full
next-token distribution learns far more per query than one trained on sampled text, and
``logit_bias`` lets an attacker read logits a token at a time (Carlini et al. 2024, "Stealing
part of a production language model"; Finlayson et al. 2024). Vendors answer by returning no
logprobs, at most a few ``top_logprobs``, or coarsened values, and by limiting ``logit_bias``.

- ``hide``: no logprobs at all (the request is served as if it had not asked).
- ``max_top_logprobs``: at most this many alternatives per token (0: the chosen token's only).
- ``round_to``: every logprob rounded to a multiple of this step (e.g. 0.5 nats).
- ``noise_std``: Gaussian noise (nats) on every logprob, clipped at 0; alternatives re-sorted.
  With ``consistent_noise`` (default) the noise is a function of the prompt, so asking the same
  question again returns the same noisy values and averaging repeats gains nothing.
- ``reverse_sigmoid_beta`` (with ``reverse_sigmoid_gamma``): the reverse-sigmoid
  perturbation of Lee et al. 2019 ("Defending against NN model stealing attacks using
  deceptive perturbations"), as the ART toolkit's ``ReverseSigmoid`` postprocessor computes
  it: each returned probability ``p`` becomes ``p - beta (sigmoid(gamma logit(p)) - 1/2)``,
  clipped to [0, 1], and the returned tokens and the rest of the mass (as one more class) are
  renormalised together. It flattens confident distributions while mostly keeping their order,
  so a student of the soft labels learns a wrong distribution and one of the text loses
  nothing. Applied before noise and rounding.
- ``ignore_logit_bias``: the request's ``logit_bias`` is dropped before sampling.

The answer text is never changed: benign users who do not read logprobs lose nothing.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

from pydantic import Field

from extractbench.defenses import params as P
from extractbench.defenses.base import DEFENSES, Defense, RequestContext
from extractbench.defenses.poison import prompt_rng
from extractbench.registry import PluginParams
from extractbench.types import Generation, SamplingParams, TokenLogprob, TopLogprob

NAME = "logprob-guard"


class LogprobGuardParams(PluginParams):
    """The parameters of ``logprob-guard``."""

    hide: bool = Field(default=False, description="return no logprobs at all")
    max_top_logprobs: int | None = Field(default=None, ge=0, le=20, description="at most this "
                                         "many alternatives per token, 0..20 (0: the chosen "
                                         "token's only; default: no cap)")
    round_to: float | None = Field(default=None, ge=0.001, le=100, description="round every "
                                   "logprob to a multiple of this step, 0.001..100 (default: "
                                   "no rounding)")
    noise_std: float = Field(default=0.0, ge=0, le=100, description="Gaussian noise (nats) on "
                             "every logprob, 0..100")
    consistent_noise: bool = Field(default=True, description="the noise is a function of the "
                                   "prompt (asking again returns the same values)")
    reverse_sigmoid_beta: float = Field(default=0.0, ge=0, le=10, description="magnitude of "
                                        "the reverse-sigmoid perturbation, 0..10 (0: off)")
    reverse_sigmoid_gamma: float = Field(default=0.1, gt=0, le=10, description="its "
                                         "convergence parameter, (0, 10]")
    ignore_logit_bias: bool = Field(default=True, description="drop the request's logit_bias "
                                    "before sampling")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="seed of the noise, "
                      "0..2^31-1")


@DEFENSES.register(NAME, params=LogprobGuardParams)
class LogprobGuard(Defense):
    """Hide logprobs, cap top_logprobs, round or add noise to them, ignore logit_bias."""

    name = NAME

    @property
    def ordered(self) -> bool:
        """Each request on its own."""
        return False

    def __init__(
        self,
        *,
        hide: bool = False,
        max_top_logprobs: int | None = None,
        round_to: float | None = None,
        noise_std: float = 0.0,
        consistent_noise: bool = True,
        ignore_logit_bias: bool = True,
        seed: int = 0,
        reverse_sigmoid_beta: float = 0.0,
        reverse_sigmoid_gamma: float = 0.1,
    ) -> None:
        self.hide = bool(P.choice(NAME, "hide", hide, (True, False)))
        cap = P.optional(NAME, "max_top_logprobs", max_top_logprobs, 0, 20, integer=True)
        self.max_top = None if cap is None else int(cap)
        self.round_to = P.optional(NAME, "round_to", round_to, 0, 100, lo_open=True)
        self.noise_std = P.number(NAME, "noise_std", noise_std, 0, 100)
        self.consistent_noise = bool(
            P.choice(NAME, "consistent_noise", consistent_noise, (True, False)))
        self.ignore_logit_bias = bool(
            P.choice(NAME, "ignore_logit_bias", ignore_logit_bias, (True, False)))
        self.seed = P.integer(NAME, "seed", seed)
        self.rs_beta = P.number(NAME, "reverse_sigmoid_beta", reverse_sigmoid_beta, 0, 10)
        self.rs_gamma = P.number(NAME, "reverse_sigmoid_gamma", reverse_sigmoid_gamma, 0, 10,
                                 lo_open=True)
        if not (self.hide or self.max_top is not None or self.round_to or self.noise_std
                or self.ignore_logit_bias or self.rs_beta):
            raise ValueError(f"{NAME}: nothing to do; set hide, max_top_logprobs, round_to, "
                             "noise_std, reverse_sigmoid_beta or ignore_logit_bias")

    def adjust(self, ctx: RequestContext) -> SamplingParams:
        p = ctx.params
        if self.ignore_logit_bias and p.logit_bias:
            self.record(ctx, "transform", removed="logit_bias")
            p = replace(p, logit_bias={})
        if self.hide and p.top_logprobs is not None:
            self.record(ctx, "transform", removed="logprobs")  # asked for, not given
            p = replace(p, top_logprobs=None)
        elif self.max_top is not None and p.top_logprobs is not None:
            if p.top_logprobs > self.max_top:
                self.record(ctx, "transform", changed="top_logprobs", asked=p.top_logprobs,
                            given=self.max_top)
            p = replace(p, top_logprobs=min(p.top_logprobs, self.max_top))
        return p

    def transform(self, ctx: RequestContext, generations: list[Generation]) -> list[Generation]:
        out = []
        for i, g in enumerate(generations):
            if g.logprobs is None:
                out.append(g)
            elif self.hide:
                self.record(ctx, "transform", removed="logprobs", sample=i)
                out.append(replace(g, logprobs=None))
            else:
                self.record(ctx, "transform", changed="logprobs", sample=i)
                rng = (prompt_rng(self.seed, ctx.prompt, f"logprob/{i}") if self.consistent_noise
                       else random.Random(f"{self.seed}/{ctx.key_id}/{ctx.index}/{i}"))
                out.append(replace(g, logprobs=[self._token(lp, rng) for lp in g.logprobs]))
        return out

    def _token(self, lp: TokenLogprob, rng: random.Random) -> TokenLogprob:
        top = lp.top if self.max_top is None else lp.top[: self.max_top]
        if self.rs_beta:
            lp, top = reverse_sigmoid(lp, top, self.rs_beta, self.rs_gamma)
        if not (self.noise_std or self.round_to):
            return replace(lp, top=top) if top is not lp.top else lp
        noise: dict[str, float] = {}

        def value(token: str, logprob: float) -> float:
            if self.noise_std:
                if token not in noise:
                    noise[token] = rng.gauss(0.0, self.noise_std)
                logprob += noise[token]
            if self.round_to:
                logprob = round(logprob / self.round_to) * self.round_to
            return min(0.0, logprob)

        new_top = [TopLogprob(t.token, t.bytes, value(t.token, t.logprob)) for t in top]
        new_top.sort(key=lambda t: -t.logprob)
        return TokenLogprob(lp.token, lp.bytes, value(lp.token, lp.logprob), new_top)


RS_FLOOR = -30.0
"""The logprob a probability the reverse sigmoid clipped to 0 is returned as."""


def reverse_sigmoid(lp: TokenLogprob, top: list[TopLogprob], beta: float,
                    gamma: float) -> tuple[TokenLogprob, list[TopLogprob]]:
    """The reverse-sigmoid perturbation of one position's returned distribution: the
    alternatives ``top`` (and the chosen token, when it is not among them) and the rest of
    the mass as one more class, each ``p -> clip(p - beta (sigmoid(gamma logit p) - 1/2))``,
    renormalised together."""
    tokens = [(t.token, t.logprob) for t in top]
    if lp.token not in {t for t, _ in tokens}:
        tokens.append((lp.token, lp.logprob))
    probs = [math.exp(v) for _, v in tokens]
    probs.append(max(0.0, 1.0 - sum(probs)))  # the mass of the tokens not returned
    moved = [min(1.0, max(0.0, p - beta * (_sigmoid(gamma * _logit(p)) - 0.5))) for p in probs]
    total = sum(moved)
    if total <= 0:
        return lp, top
    new = {t: (math.log(m / total) if m > 0 else RS_FLOOR)
           for (t, _), m in zip(tokens, moved, strict=False)}
    new_top = sorted((TopLogprob(t.token, t.bytes, new[t.token]) for t in top),
                     key=lambda t: -t.logprob)
    return replace(lp, logprob=new[lp.token]), new_top


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1.0 - 1e-9)
    return math.log(p / (1.0 - p))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))
