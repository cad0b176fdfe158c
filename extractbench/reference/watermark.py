"""A green-list watermark (Kirchenbauer et al., ICML 2023, "A Watermark for Large Language
Models") for the reference models, and its detection test.

At each sampling step the previous token and a secret ``key`` seed a pseudo-random split of the
vocabulary into a green list (a fraction ``gamma`` of the tokens) and a red list; ``delta`` is
added to the green logits. Text sampled this way holds more green tokens than chance. The test
counts, over a text's tokens, how many are green given the token before them:

    z = (green - gamma * T) / sqrt(T * gamma * (1 - gamma)),    p = 1 - Phi(z)

Under the null (text written without the key) each token is green with probability ``gamma``,
so z is approximately standard normal — *if* the scored (previous, token) pairs are
independent draws. Short, repetitive outputs (like bare numbers) repeat the same pairs, so
their z drifts away from 0 even without a watermark; ``unique=True`` scores each distinct pair
once (the repeated-n-gram fix of Kirchenbauer et al.'s follow-up), and the benchmark always
reports the statistic next to that of a control student trained without the watermark.

The first token of a response is scored against ``<sep>``, the token every reference prompt
ends with, exactly as it was sampled. Low-entropy text (a confident model answering
arithmetic) carries little watermark: where the best token leads by more than ``delta``, the
bias changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import TYPE_CHECKING

from extractbench.reference import tokenizer

if TYPE_CHECKING:
    import torch

__all__ = ["GreenList", "WatermarkTest", "detect", "green_matrix"]


@lru_cache(maxsize=16)
def green_matrix(key: int, gamma: float, vocab_size: int = tokenizer.VOCAB_SIZE) -> torch.Tensor:
    """``(vocab, vocab)`` booleans: row ``prev`` marks the green tokens after token ``prev``."""
    import torch

    if not 0.0 < gamma < 1.0:
        raise ValueError(f"watermark: gamma must be in (0, 1), got {gamma}")
    n_green = max(1, min(vocab_size - 1, round(gamma * vocab_size)))
    out = torch.zeros((vocab_size, vocab_size), dtype=torch.bool)
    for prev in range(vocab_size):
        gen = torch.Generator().manual_seed((key * 1_000_003 + prev * 7919) % (2**63 - 1))
        out[prev, torch.randperm(vocab_size, generator=gen)[:n_green]] = True
    return out


@dataclass(frozen=True)
class GreenList:
    """The watermark's secret and strength: a logits processor (see :mod:`generation`)."""

    key: int
    gamma: float = 0.5
    delta: float = 2.0
    vocab_size: int = tokenizer.VOCAB_SIZE

    @property
    def green(self) -> torch.Tensor:
        return green_matrix(self.key, self.gamma, self.vocab_size)

    def __call__(self, ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Add ``delta`` to the logits of the tokens green after each row's last token."""
        prev = ids[:, -1].clamp(0, self.vocab_size - 1)
        return logits + self.delta * self.green[prev].to(logits.dtype)

    def detect(self, texts: Iterable[str], unique: bool = False) -> WatermarkTest:
        return detect(texts, key=self.key, gamma=self.gamma, unique=unique,
                      vocab_size=self.vocab_size)


@dataclass(frozen=True)
class WatermarkTest:
    """The detection statistic over a set of texts."""

    z: float
    """z-score of the green count (``nan`` when nothing was scored)."""
    p: float
    """One-sided p-value, ``1 - Phi(z)`` (``nan`` when nothing was scored)."""
    green: int
    scored: int
    """Tokens (or distinct pairs, with ``unique``) scored."""
    gamma: float

    @property
    def green_fraction(self) -> float:
        return self.green / self.scored if self.scored else math.nan


def pairs(text: str) -> list[tuple[int, int]]:
    """(previous token, token) pairs of a response, the first scored after ``<sep>``."""
    ids = tokenizer.encode(text)
    return list(zip([tokenizer.SEP, *ids], ids, strict=False))


def detect(texts: Iterable[str], *, key: int, gamma: float = 0.5, unique: bool = False,
           vocab_size: int = tokenizer.VOCAB_SIZE) -> WatermarkTest:
    """The z-test over all ``texts`` together (each a response without its prompt)."""
    green_rows = green_matrix(key, gamma, vocab_size)
    scored: Sequence[tuple[int, int]] = [p for t in texts for p in pairs(t)]
    if unique:
        scored = sorted(set(scored))
    t = len(scored)
    if t == 0:
        return WatermarkTest(math.nan, math.nan, 0, 0, gamma)
    green = sum(1 for prev, tok in scored if bool(green_rows[prev, tok]))
    z = (green - gamma * t) / math.sqrt(t * gamma * (1 - gamma))
    return WatermarkTest(z, 1.0 - NormalDist().cdf(z), green, t, gamma)
