"""The shape of a :class:`~extractbench.reference.lm.TinyLM`, importable without torch (a
plugin validates its parameters and builds its config before any model runs)."""

from __future__ import annotations

from dataclasses import dataclass

from extractbench.reference import tokenizer

__all__ = ["LMConfig"]


@dataclass(frozen=True)
class LMConfig:
    """Shape of a :class:`TinyLM`."""

    vocab_size: int = tokenizer.VOCAB_SIZE
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    d_ff: int = 512
    max_len: int = 160
    max_prompt: int = 96
