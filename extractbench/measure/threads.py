"""Torch thread settings around the run's phases."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

__all__ = ["serving_threads"]


def serving_threads(fn: Callable[[], T]) -> T:
    """Run ``fn`` with one torch thread: the in-process reference server answers many tiny
    requests, for which thread hand-offs cost more than they save. Training gets them back."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)
