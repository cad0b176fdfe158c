"""Shared fixtures."""

from __future__ import annotations

import pytest
import torch

from extractbench.reference.lm import LMConfig, TinyLM


@pytest.fixture(scope="session")
def tiny_lm() -> TinyLM:
    """A randomly initialised tiny model: gibberish output, but real logits, fast."""
    torch.manual_seed(0)
    return TinyLM(LMConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64)).eval()
