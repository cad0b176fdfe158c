"""Supervised training of a :class:`~extractbench.reference.lm.TinyLM` on prompt -> response pairs.

The loss covers the response tokens (and the closing ``<eos>``) only.

**Distillation from logprobs.** An :class:`Example` may carry soft labels: per response token,
the endpoint's top-k alternatives as ``(token id, logprob)`` pairs. At a position with k >= 2
alternatives the token loss mixes the usual cross-entropy on the harvested token with a KL
term on the top-k set::

    loss_t = (1 - kd_weight) * CE(student, harvested token)
             + kd_weight * KL(q || p)

where ``q`` is the teacher's top-k probabilities renormalised to sum to one and ``p`` is the
student's distribution restricted to the same k tokens, renormalised too (a top-k list says
nothing about how the rest of the mass is spread, so the KL term only shapes the student
*within* the top-k; the CE term keeps the harvested token on top). Positions without soft
labels (or with a single alternative) use plain CE. The loss is the mean over response
tokens. A batch without soft labels takes exactly the text-only path, so text-only training is
unchanged (and reference teachers stay reproducible).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from extractbench.reference import tokenizer
from extractbench.reference.lm import LMConfig, TinyLM

_NEG = -1e9  # padding logit for unused top-k slots

SoftLabels = tuple[tuple[tuple[int, float], ...], ...]
"""Per response token: the teacher's ``(token id, logprob)`` alternatives, best first."""


@dataclass(frozen=True)
class Example:
    prompt: str
    response: str
    soft: SoftLabels | None = None
    """Soft labels, one entry per response token (byte), or ``None`` for text only."""


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 50
    seed: int = 0
    kd_weight: float = 0.5
    """Weight of the KL term at positions with soft labels (0: text only, 1: KL only)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.kd_weight <= 1.0:
            raise ValueError(f"TrainConfig.kd_weight must be in [0, 1], got {self.kd_weight}")


@dataclass(frozen=True)
class _Encoded:
    ids: list[int]
    start: int
    soft: SoftLabels | None


def encode_example(ex: Example, cfg: LMConfig) -> tuple[list[int], int]:
    """Token ids of prompt+response+eos and the index where the response starts."""
    p = tokenizer.prompt_ids(ex.prompt, cfg.max_prompt)
    r = tokenizer.encode(ex.response)[: cfg.max_len - len(p) - 1]
    return [*p, *r, tokenizer.EOS], len(p)


def _encode(ex: Example, cfg: LMConfig) -> _Encoded:
    ids, start = encode_example(ex, cfg)
    soft = None
    if ex.soft is not None:
        n = len(ids) - start - 1  # response tokens kept after truncation
        soft = ex.soft[:n]
    return _Encoded(ids, start, soft)


def _batch(encoded: Sequence[_Encoded]) -> tuple[torch.Tensor, ...]:
    width = max(len(e.ids) for e in encoded)
    ids = torch.full((len(encoded), width), tokenizer.PAD, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.bool)
    target = torch.full((len(encoded), width), -100, dtype=torch.long)
    for i, e in enumerate(encoded):
        seq, start = e.ids, e.start
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = True
        # predict token j+1 from position j, for response tokens only
        target[i, start - 1 : len(seq) - 1] = torch.tensor(seq[start:])
    return ids, mask, target


def _soft_batch(
    encoded: Sequence[_Encoded], width: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(ids (B,W,K), teacher logprobs (B,W,K) padded with ``_NEG``, on (B,W)), or ``None`` when
    no position of the batch has two or more alternatives."""
    k = max((len(alts) for e in encoded if e.soft for alts in e.soft), default=0)
    if k < 2:
        return None
    b = len(encoded)
    soft_ids = torch.zeros((b, width, k), dtype=torch.long)
    soft_lp = torch.full((b, width, k), _NEG)
    on = torch.zeros((b, width), dtype=torch.bool)
    for i, e in enumerate(encoded):
        for j, alts in enumerate(e.soft or ()):
            if len(alts) < 2:
                continue
            pos = e.start - 1 + j
            soft_ids[i, pos, : len(alts)] = torch.tensor([t for t, _ in alts])
            soft_lp[i, pos, : len(alts)] = torch.tensor([max(lp, -1e4) for _, lp in alts])
            on[i, pos] = True
    return soft_ids, soft_lp, on


def kd_loss(
    logits: torch.Tensor, target: torch.Tensor, soft: tuple[torch.Tensor, ...] | None,
    kd_weight: float,
) -> torch.Tensor:
    """Mean response-token loss: CE, mixed with KL on the renormalised top-k where ``soft``
    has labels (see the module docstring)."""
    flat = logits.reshape(-1, logits.shape[-1])
    if soft is None or kd_weight == 0.0:
        return F.cross_entropy(flat, target.reshape(-1), ignore_index=-100)
    soft_ids, soft_lp, on = soft
    ce = F.cross_entropy(flat, target.reshape(-1), ignore_index=-100, reduction="none")
    ce = ce.view(target.shape)
    valid = soft_lp > _NEG  # padding is finite so no NaN reaches the gradients
    q_log = torch.log_softmax(soft_lp, dim=-1)  # renormalised teacher top-k
    student = logits.gather(-1, soft_ids).masked_fill(~valid, _NEG)
    p_log = torch.log_softmax(student, dim=-1)  # student restricted to the same k, renormalised
    terms = torch.where(valid, q_log.exp() * (q_log - p_log), torch.zeros_like(q_log))
    kl = terms.sum(-1)
    use = on & (target != -100)
    per_token = torch.where(use, (1 - kd_weight) * ce + kd_weight * kl, ce)
    counted = target != -100
    return per_token[counted].mean()


def train(
    model: TinyLM,
    examples: Sequence[Example] | Callable[[random.Random], Example],
    cfg: TrainConfig,
    on_step: Callable[[int, float], None] | None = None,
    tokens: list[int] | None = None,
) -> list[float]:
    """Train in place. ``examples`` is a fixed list or a sampler drawing fresh examples.

    Returns the loss per step. Deterministic for a given seed and torch thread count.
    ``tokens`` (when given) gets the number of target tokens of each step's batch.
    """
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    fixed = None if callable(examples) else [_encode(e, model.cfg) for e in examples]
    if fixed is not None and not fixed:
        return []
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / cfg.warmup)
        * max(0.05, 1 - s / max(1, cfg.steps)),
    )
    model.train()
    losses: list[float] = []
    for step in range(cfg.steps):
        if fixed is not None:
            enc = [fixed[rng.randrange(len(fixed))] for _ in range(cfg.batch_size)]
        else:
            sampler = examples
            assert callable(sampler)
            enc = [_encode(sampler(rng), model.cfg) for _ in range(cfg.batch_size)]
        ids, mask, target = _batch(enc)
        if tokens is not None:
            tokens.append(int((target != -100).sum()))
        logits = model(ids, mask)
        soft = _soft_batch(enc, ids.shape[1]) if cfg.kd_weight > 0 else None
        loss = kd_loss(logits, target, soft, cfg.kd_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.detach().item())
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    return losses


@torch.no_grad()
def batch_loss(model: TinyLM, examples: Sequence[Example], cfg: TrainConfig) -> float:
    """The training loss of ``model`` on every one of ``examples`` (in batches of
    ``cfg.batch_size``, weighted by target tokens): an early-stopping check."""
    model.eval()
    enc = [_encode(e, model.cfg) for e in examples]
    total, count = 0.0, 0
    for i in range(0, len(enc), cfg.batch_size):
        chunk = enc[i : i + cfg.batch_size]
        ids, mask, target = _batch(chunk)
        soft = _soft_batch(chunk, ids.shape[1]) if cfg.kd_weight > 0 else None
        n = int((target != -100).sum())
        total += float(kd_loss(model(ids, mask), target, soft, cfg.kd_weight)) * n
        count += n
    return total / max(1, count)
