"""A test double that ships with the library (like httpx's ``MockTransport``): a sampling-time
"defense" that makes a reference model say a scripted answer through the real generation path.

    stack = DefenseStack([Scripted(lambda prompt: "<reasoning>2+3=5</reasoning>\\n5")])

At each step it adds ``bonus`` to the logit of the scripted answer's next byte (then
``<eos>``), so the answer, its usage and its logprobs come out of :func:`generate` as for any
text. Not registered in ``DEFENSES``: it is for tests of defenses that act on answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from extractbench.defenses.base import Defense, RequestContext
from extractbench.reference import tokenizer
from extractbench.types import LogitsProcessor

if TYPE_CHECKING:
    import torch


class Scripted(Defense):
    """Forces ``answer(prompt)`` as the model's output."""

    name = "scripted"

    def __init__(self, answer: Callable[[str], str], *, bonus: float = 50.0,
                 max_prompt: int = 96) -> None:
        self.answer = answer
        self.bonus = bonus
        self.max_prompt = max_prompt

    def logits_processors(self, ctx: RequestContext) -> list[LogitsProcessor]:
        target = [*tokenizer.encode(self.answer(ctx.prompt)), tokenizer.EOS]
        start = len(tokenizer.prompt_ids(ctx.prompt, self.max_prompt))

        def proc(ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
            step = ids.shape[1] - start
            out = logits.clone()
            out[:, target[min(step, len(target) - 1)]] += self.bonus
            return out

        return [proc]
