"""``Moves``: whether a sampling-time defense's processor moved the teacher's top token for
a request (what its harm count rests on)."""

from __future__ import annotations

import torch

from extractbench.defenses import RequestContext
from extractbench.defenses.moved import Moves
from extractbench.types import SamplingParams


def ctx(index: int) -> RequestContext:
    return RequestContext(api="openai", route="/v1/chat/completions", key_id="benign-0",
                          index=index, model="m", prompt="p", params=SamplingParams())


def test_only_a_processor_that_changes_the_top_token_moves_it() -> None:
    logits = torch.tensor([[3.0, 1.0, 0.0]])
    ids = torch.zeros((1, 2), dtype=torch.long)
    moves = Moves()
    # a constant shift leaves every choice where it was; raising token 2 past token 0 moves it
    shift = moves.watch(ctx(0), lambda i, x: x + 5.0)
    flip = moves.watch(ctx(1), lambda i, x: x + torch.tensor([0.0, 0.0, 4.0]))
    assert torch.equal(shift(ids, logits), logits + 5.0)
    flip(ids, logits)
    assert (moves.moved(ctx(0)), moves.moved(ctx(1))) == (False, True)
    assert moves.moved(ctx(1)) is False  # forgotten once read
    assert moves.moved(ctx(9)) is False  # never watched
