"""Data types shared across the package, free of torch: what a request asks of a sampler
(:class:`SamplingParams`) and what one sampled completion is (:class:`Generation`).

The torch sampler that produces them is :mod:`extractbench.reference.generation`; the
serving code, the defenses and the clients use these types without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    import torch

__all__ = ["Generation", "LogitsProcessor", "SamplingParams", "TokenLogprob", "TopLogprob"]

# A logits processor sees the ids generated so far (batch, t) and the next-token logits
# (batch, vocab) and returns new logits. Sampling-time defenses (watermark) are processors.
LogitsProcessor: TypeAlias = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass(frozen=True)
class SamplingParams:
    """What a request asks of the sampler (the union of the OpenAI and Anthropic knobs)."""

    max_tokens: int = 32
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    top_logprobs: int | None = None  # None: no logprobs; 0: logprob of the chosen token only
    logit_bias: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TopLogprob:
    token: str
    bytes: list[int]
    logprob: float


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    bytes: list[int]
    logprob: float
    top: list[TopLogprob]


@dataclass(frozen=True)
class Generation:
    """One sampled completion."""

    text: str
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
    logprobs: list[TokenLogprob] | None = None
