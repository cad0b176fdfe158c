"""``tinylm``: a small byte-level transformer trained from scratch on the harvest.

What it learns from:

- **text**: every pair's response text, with the loss on the response tokens only. Reasoning
  traces need nothing special: a harvested "working + answer" response is the target, the
  model learns to reason before answering, and :meth:`TinyLMStudent.predict` gives it room to
  (it generates up to the longest response it was trained on when that is longer than the
  ``max_tokens`` it is asked for; the task's extractor then reads the final answer).
- **logprobs**: when a pair carries ``top_logprobs`` that line up with its response bytes (one
  list of single-byte alternatives per byte, as the reference endpoint returns them), the loss
  at those positions mixes CE with a KL term on the renormalised top-k
  (:mod:`extractbench.reference.training`, weight ``kd_weight``). Pairs whose logprobs do not
  line up
  (a vendor's multi-byte tokens, a perturbed or partial list) train on text alone;
  ``FitReport.details["soft_pairs"]`` says how many pairs had soft labels.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from extractbench.reference import tokenizer
from extractbench.reference.config import LMConfig
from extractbench.registry import PluginParams, rule_error
from extractbench.students.base import STUDENTS, FitReport, TrainPair, refuse_removed_schedule

if TYPE_CHECKING:  # torch loads when a student trains, not when it is listed or validated
    from extractbench.reference.lm import TinyLM
    from extractbench.reference.training import SoftLabels

MAX_LEN_CAP = 512  # longest sequence (prompt + response) the student grows to for reasoning


def soft_labels(pair: TrainPair) -> SoftLabels | None:
    """The pair's top-logprobs as byte-token soft labels, or ``None`` when they do not line up
    with the response bytes (then the pair trains on its text only)."""
    if not pair.top_logprobs:
        return None
    if len(pair.top_logprobs) != len(tokenizer.encode(pair.response)):
        return None
    out: list[tuple[tuple[int, float], ...]] = []
    for alts in pair.top_logprobs:
        ids: list[tuple[int, float]] = []
        for token, logprob in alts:
            tid = tokenizer.token_id(token)
            if tid is None:
                return None
            ids.append((tid, float(logprob)))
        out.append(tuple(ids))
    return tuple(out)


TRAIN_MEMORY_CAP = 4 * 2**30
"""Most memory (bytes) a ``tinylm`` configuration may need to train, by
:func:`train_memory`: 4 GiB, what a shared CPU machine can give one student."""


def train_memory(d_model: int, n_layers: int, batch_size: int) -> int:
    """Bytes a training step needs at worst (every sequence at the 512-token cap): the
    activations kept for the backward pass (per token and layer about ``28 d_model + 600``
    floats, plus about 1500 per token for the embeddings and logits) and the weights with
    their gradients and Adam moments. Measured on CPU with PyTorch's attention; the
    defaults need about 0.8 GB."""
    activations = batch_size * MAX_LEN_CAP * (n_layers * (28 * d_model + 600) + 1500)
    weights = 4 * 12 * n_layers * d_model * d_model
    return 4 * (activations + weights)


CHECK_EVERY = 50
"""With ``early_stop``: steps between checks of the held-back loss."""
PATIENCE = 4
"""With ``early_stop``: checks without improvement before training stops."""
PLATEAU = 0.02
"""Fixed schedule: converged when the mean loss of the last tenth of the steps is within this
fraction of the tenth before (or 0.01 nats per token, near zero loss)."""


class TinyLMParams(PluginParams):
    """The parameters of ``tinylm``. Besides each range: ``d_model`` is a multiple of
    ``n_heads`` and a training step fits in 4 GiB (:func:`train_memory`: wide, deep models
    take smaller batches)."""

    d_model: int = Field(default=64, ge=8, le=1024, description="model width, 8..1024 (a "
                         "multiple of n_heads)")
    n_layers: int = Field(default=2, ge=1, le=12, description="transformer layers, 1..12")
    n_heads: int = Field(default=4, ge=1, le=16, description="attention heads, 1..16")
    batch_size: int = Field(default=64, ge=1, le=1024, description="pairs per optimiser step, "
                            "1..1024 (with d_model and n_layers, a training step fits in "
                            "4 GiB)")
    lr: float = Field(default=3e-3, gt=0, le=1, description="learning rate, (0, 1]")
    steps: int = Field(default=800, ge=1, le=100_000, description="optimiser steps, 1..100000, "
                       "whatever the harvest size: the attacker's compute is fixed per recipe "
                       "(with early_stop, the most)")
    early_stop: bool = Field(default=False, description="stop once the loss on a held-back "
                             "tenth of the harvest (from 20 pairs) has not improved for "
                             f"{PATIENCE} checks {CHECK_EVERY} steps apart")
    kd_weight: float = Field(default=0.5, ge=0, le=1, description="weight of the distillation "
                             "term where the harvest has logprobs, 0..1 (0: text only)")

    @model_validator(mode="before")
    @classmethod
    def _removed(cls, data: Any) -> Any:
        return refuse_removed_schedule(data)

    @model_validator(mode="after")
    def _rules(self) -> TinyLMParams:
        if self.d_model % self.n_heads:
            raise rule_error("d_model", f"must be a multiple of n_heads ({self.n_heads}), "
                             f"got {self.d_model}")
        need = train_memory(self.d_model, self.n_layers, self.batch_size)
        if need > TRAIN_MEMORY_CAP:
            raise rule_error("batch_size", f"a training step of d_model {self.d_model} x "
                             f"n_layers {self.n_layers} x batch_size {self.batch_size} needs "
                             f"about {need / 2**30:.1f} GiB, more than 4 GiB (use a smaller "
                             "batch_size, d_model or n_layers)")
        return self


class _Stop(Exception):
    """Raised from the step callback to end training early."""


class TinyLMStudent:
    """A small transformer LM (same byte vocabulary as the teachers) trained from scratch.

    Training length is fixed per recipe: ``steps`` optimiser steps of ``batch_size`` pairs
    drawn from the harvest, whatever its size, so a larger budget buys more data, never more
    compute. With ``early_stop`` a tenth of the harvest (from 20 pairs) is held back and
    training stops once its loss has not improved for a while (never on held-out task data).
    The fit report says the steps run, the tokens seen, the final training loss and whether
    training converged (fixed schedule: past twice the warmup, the loss of the last tenth of
    the steps is within 2% or 0.01 nats of the tenth before; early stop: it stopped before
    ``steps``). With no data the model stays
    at its random initialisation. ``kd_weight`` weighs the distillation term where the harvest
    has logprobs (0 disables it). The context grows past the default 160 tokens (up to 512)
    when harvested responses need it (reasoning traces).
    """

    def __init__(self, d_model: int = 64, n_layers: int = 2, n_heads: int = 4,
                 batch_size: int = 64, lr: float = 3e-3, steps: int = 800,
                 early_stop: bool = False, kd_weight: float = 0.5) -> None:
        if d_model % n_heads:
            raise ValueError("tinylm: d_model must be a multiple of n_heads")
        if steps < 1:
            raise ValueError(f"tinylm: steps must be at least 1, got {steps}")
        if not 0.0 <= kd_weight <= 1.0:
            raise ValueError(f"tinylm: kd_weight must be in [0, 1], got {kd_weight}")
        self.cfg = LMConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                            d_ff=4 * d_model)
        self.batch_size, self.lr, self.steps = batch_size, lr, steps
        self.early_stop = early_stop
        self.kd_weight = kd_weight
        self.model: TinyLM | None = None
        self._room = 0  # longest trained response, in tokens

    def _config_for(self, pairs: list[TrainPair]) -> LMConfig:
        need = max((self.cfg.max_prompt + len(tokenizer.encode(p.response)) + 1 for p in pairs),
                   default=0)
        if need <= self.cfg.max_len:
            return self.cfg
        return LMConfig(**{**self.cfg.__dict__, "max_len": min(MAX_LEN_CAP, need)})

    def fit(self, pairs: list[TrainPair], seed: int) -> FitReport:
        import random

        import torch

        from extractbench.reference.lm import TinyLM
        from extractbench.reference.training import Example, TrainConfig, batch_loss, train

        t0 = time.time()
        torch.manual_seed(seed)
        self.model = TinyLM(self._config_for(pairs))
        self._room = max((len(tokenizer.encode(p.response)) + 1 for p in pairs), default=0)
        examples = [Example(p.prompt, p.response, soft_labels(p) if self.kd_weight else None)
                    for p in pairs]
        held: list[Example] = []
        if self.early_stop and len(examples) >= 20:
            order = list(range(len(examples)))
            random.Random(f"{seed}/early-stop").shuffle(order)
            cut = len(examples) // 10
            held = [examples[i] for i in order[:cut]]
            examples = [examples[i] for i in order[cut:]]
        losses: list[float] = []
        tokens: list[int] = []
        checks: list[float] = []
        stopped = False
        tc = None
        if examples:
            tc = TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr,
                             seed=seed, kd_weight=self.kd_weight)
            model = self.model

            def on_step(step: int, loss: float) -> None:
                losses.append(loss)
                if held and (step + 1) % CHECK_EVERY == 0:
                    checks.append(batch_loss(model, held, tc))
                    model.train()
                    if len(checks) > PATIENCE:  # no gain of 1% (or 1e-4) in PATIENCE checks
                        before = min(checks[:-PATIENCE])
                        if min(checks[-PATIENCE:]) > before * (1 - PLATEAU / 2) - 1e-4:
                            raise _Stop

            try:
                train(self.model, examples, tc, on_step=on_step, tokens=tokens)
            except _Stop:
                stopped = True
        self.model.eval()
        details: dict[str, Any] = {
            "soft_pairs": sum(e.soft is not None for e in examples),
            "max_len": self.model.cfg.max_len,
            "held_back": len(held),
        }
        if checks:
            details["held_back_loss"] = checks[-1]
        return FitReport(train_s=time.time() - t0, steps=len(losses), examples=len(pairs),
                         details=details, tokens_seen=sum(tokens),
                         final_loss=_tail_mean(losses),
                         converged=_converged(losses, stopped, bool(held), tc_warmup(tc)))

    def predict(self, prompts: list[str], max_tokens: int) -> list[str]:
        if self.model is None:
            raise RuntimeError("tinylm: fit() before predict()")
        from extractbench.reference.generation import greedy

        return greedy(self.model, prompts, max(max_tokens, self._room))


def _tail_mean(losses: list[float]) -> float | None:
    """The mean training loss of the last tenth of the steps (one step's loss is noisy)."""
    if not losses:
        return None
    tail = losses[-max(1, len(losses) // 10):]
    return sum(tail) / len(tail)


def tc_warmup(tc: Any) -> int:
    return int(tc.warmup) if tc is not None else 0


def _converged(losses: list[float], stopped: bool, early: bool, warmup: int) -> bool | None:
    """Whether training ran to a plateau (None: no training). A run that has not gone well
    past its learning-rate warmup has not converged, however flat its loss."""
    if not losses:
        return None
    if early:
        return stopped
    k = len(losses) // 10
    if k < 1 or len(losses) < 2 * warmup:
        return False
    last, before = losses[-k:], losses[-2 * k:-k]
    mean_last, mean_before = sum(last) / k, sum(before) / k
    return mean_before - mean_last < max(PLATEAU * mean_before, 0.01)  # nats per token


@STUDENTS.register("tinylm", params=TinyLMParams)
def make_tinylm(**params: Any) -> TinyLMStudent:
    """Small byte-level transformer trained from scratch on the harvest (PyTorch, CPU)."""
    return TinyLMStudent(**params)
