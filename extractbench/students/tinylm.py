"""``tinylm``: a small byte-level transformer trained from scratch on the harvest."""

from __future__ import annotations

import time
from typing import Any

import torch

from extractbench.generation import greedy
from extractbench.lm import LMConfig, TinyLM
from extractbench.students.base import STUDENTS, FitReport, TrainPair
from extractbench.training import Example, TrainConfig, train


class TinyLMStudent:
    """A small transformer LM (same byte vocabulary as the teachers) trained from scratch.

    Training length follows the data: ``epochs`` passes over the harvest, clamped to
    [``min_steps``, ``max_steps``] optimiser steps. With no data the model stays at its
    random initialisation (that is the ``base_score`` recipe).
    """

    def __init__(self, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
                 batch_size: int = 64, lr: float = 3e-3, epochs: float = 30.0,
                 min_steps: int = 50, max_steps: int = 1000) -> None:
        if d_model % n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        if min_steps > max_steps:
            raise ValueError("min_steps must be <= max_steps")
        self.cfg = LMConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                            d_ff=4 * d_model)
        self.batch_size, self.lr, self.epochs = batch_size, lr, epochs
        self.min_steps, self.max_steps = min_steps, max_steps
        self.model: TinyLM | None = None

    def steps_for(self, n: int) -> int:
        if n == 0:
            return 0
        want = int(self.epochs * n / self.batch_size)
        return max(self.min_steps, min(self.max_steps, want))

    def fit(self, pairs: list[TrainPair], seed: int) -> FitReport:
        t0 = time.time()
        torch.manual_seed(seed)
        self.model = TinyLM(self.cfg)
        steps = self.steps_for(len(pairs))
        losses: list[float] = []
        if steps:
            examples = [Example(p.prompt, p.response) for p in pairs]
            tc = TrainConfig(steps=steps, batch_size=self.batch_size, lr=self.lr, seed=seed)
            losses = train(self.model, examples, tc)
        self.model.eval()
        details: dict[str, Any] = {"final_loss": losses[-1] if losses else None}
        return FitReport(train_s=time.time() - t0, steps=steps, examples=len(pairs),
                         details=details)

    def predict(self, prompts: list[str], max_tokens: int) -> list[str]:
        if self.model is None:
            raise RuntimeError("fit() before predict()")
        return greedy(self.model, prompts, max_tokens)


@STUDENTS.register("tinylm")
def make_tinylm(**params: Any) -> TinyLMStudent:
    """Small byte-level transformer trained from scratch on the harvest (PyTorch, CPU)."""
    return TinyLMStudent(**params)
