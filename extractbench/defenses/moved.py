"""Counting what a sampling-time defense did to a request: whether it moved the top token.

A defense that reshapes the teacher's next-token distribution (``watermark``,
``antidistill``) changes an answer only where the shifted logits pick another top token than
the teacher's own at some step. :class:`Moves` wraps such a defense's processor per request,
notes that, and tells the defense's ``transform`` stage, which records a ``transform`` event
(``changed: answer``): a benign key whose answers a defense changed is a harmed key, like one
whose answers were poisoned. A moved top token is what a greedy request sees; a sampled one
may or may not have drawn it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from extractbench.defenses.base import Defense, RequestContext
from extractbench.types import Generation, LogitsProcessor

if TYPE_CHECKING:
    import torch

__all__ = ["ChangesAnswers", "Moves"]


@dataclass
class _Watched:
    inner: LogitsProcessor
    moved: bool = False

    def __call__(self, ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        out = self.inner(ids, logits)
        if not self.moved and bool((out.argmax(dim=-1) != logits.argmax(dim=-1)).any()):
            self.moved = True
        return out


class Moves:
    """Per request (key, query index): whether its wrapped processor moved a top token."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, int], _Watched] = {}
        self._lock = threading.Lock()

    def watch(self, ctx: RequestContext, processor: LogitsProcessor) -> LogitsProcessor:
        """``processor``, watched for ``ctx``'s request."""
        watched = _Watched(processor)
        with self._lock:
            self._open[(ctx.key_id, ctx.index)] = watched
        return watched

    def moved(self, ctx: RequestContext) -> bool:
        """Whether the processor watched for ``ctx``'s request moved a top token (and forget
        it); ``False`` for a request it never saw."""
        with self._lock:
            watched = self._open.pop((ctx.key_id, ctx.index), None)
        return watched is not None and watched.moved

    def clear(self) -> None:
        with self._lock:
            self._open.clear()


class ChangesAnswers(Defense):
    """A sampling-time defense that may change answers. Its processors go through
    :meth:`watched`, and its ``transform`` stage records a ``transform`` event
    (``changed: answer``) for a request whose top token they moved. A subclass sets
    ``self._moves = Moves()`` in its constructor."""

    _moves: Moves

    def watched(self, ctx: RequestContext, processor: LogitsProcessor) -> LogitsProcessor:
        return self._moves.watch(ctx, processor)

    def transform(self, ctx: RequestContext, generations: list[Generation]) -> list[Generation]:
        """Record that the answer is not the teacher's, when a processor moved a top token."""
        if self._moves.moved(ctx):
            self.record(ctx, "transform", changed="answer", mode=self.name)
        return generations

    def reset(self) -> None:
        self._moves.clear()
