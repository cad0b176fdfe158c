"""Supervised training of a :class:`~extractbench.lm.TinyLM` on prompt -> response pairs.

The loss covers the response tokens (and the closing ``<eos>``) only. Optional soft targets
(per response token, a dict of token id -> log-probability) add a distillation term.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from extractbench import tokenizer
from extractbench.lm import LMConfig, TinyLM


@dataclass(frozen=True)
class Example:
    prompt: str
    response: str


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 50
    seed: int = 0


def encode_example(ex: Example, cfg: LMConfig) -> tuple[list[int], int]:
    """Token ids of prompt+response+eos and the index where the response starts."""
    p = tokenizer.prompt_ids(ex.prompt, cfg.max_prompt)
    r = tokenizer.encode(ex.response)[: cfg.max_len - len(p) - 1]
    return [*p, *r, tokenizer.EOS], len(p)


def _batch(encoded: Sequence[tuple[list[int], int]]) -> tuple[torch.Tensor, ...]:
    width = max(len(ids) for ids, _ in encoded)
    ids = torch.full((len(encoded), width), tokenizer.PAD, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.bool)
    target = torch.full((len(encoded), width), -100, dtype=torch.long)
    for i, (seq, start) in enumerate(encoded):
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = True
        # predict token j+1 from position j, for response tokens only
        target[i, start - 1 : len(seq) - 1] = torch.tensor(seq[start:])
    return ids, mask, target


def train(
    model: TinyLM,
    examples: Sequence[Example] | Callable[[random.Random], Example],
    cfg: TrainConfig,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train in place. ``examples`` is a fixed list or a sampler drawing fresh examples.

    Returns the loss per step. Deterministic for a given seed and torch thread count.
    """
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    fixed = None if callable(examples) else [encode_example(e, model.cfg) for e in examples]
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
            enc = [encode_example(sampler(rng), model.cfg) for _ in range(cfg.batch_size)]
        ids, mask, target = _batch(enc)
        logits = model(ids, mask)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                               ignore_index=-100)
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
