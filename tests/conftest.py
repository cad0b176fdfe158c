"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from extractbench.reference.lm import LMConfig, TinyLM


@pytest.fixture(scope="session")
def tiny_lm() -> TinyLM:
    """A randomly initialised tiny model: gibberish output, but real logits, fast."""
    torch.manual_seed(0)
    return TinyLM(LMConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64)).eval()


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module's tests (a tiny model is fastest on one), restored
    after. Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
