"""``reasoning-guard``: strip the reasoning block from answers, or replace it with a short
summary.

The idea modelled: worked reasoning is the most valuable thing a distiller can harvest —
students trained on chain-of-thought traces learn multi-step skills that answer-only data does
not teach — so vendors hide raw reasoning and show, at most, a summary of it (OpenAI's o-series
reasoning summaries, Anthropic's summarised thinking). The user keeps the final answer.

A reasoning block is the text between ``open_tag`` and ``close_tag`` (default
``<reasoning>...</reasoning>``, the reference teachers' format); an unclosed block (the answer
was cut by ``max_tokens``) runs to the end of the text.

- ``mode: strip``: the block and the whitespace after it are removed.
- ``mode: summary``: the block's content is replaced by its first line, cut to
  ``summary_chars`` characters, and a count of the lines left out.

Token logprobs of the removed text are dropped; the logprobs of the answer are kept.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field

from extractbench.defenses import params as P
from extractbench.defenses.base import DEFENSES, Defense, RequestContext
from extractbench.registry import PluginParams
from extractbench.types import Generation, TokenLogprob

NAME = "reasoning-guard"


class ReasoningGuardParams(PluginParams):
    """The parameters of ``reasoning-guard``."""

    mode: Literal["strip", "summary"] = Field(default="strip", description="remove the "
                                              "reasoning block, or replace it with a summary")
    open_tag: str = Field(default="<reasoning>", min_length=1, description="text that opens a "
                          "reasoning block (not empty)")
    close_tag: str = Field(default="</reasoning>", min_length=1, description="text that closes "
                           "a reasoning block (not empty)")
    summary_chars: int = Field(default=40, ge=0, le=1000, description="summary: characters "
                               "kept of the block's first line, 0..1000")


@DEFENSES.register(NAME, params=ReasoningGuardParams)
class ReasoningGuard(Defense):
    """Strip the <reasoning>...</reasoning> block, or replace it with a short summary."""

    name = NAME

    @property
    def ordered(self) -> bool:
        """Each request on its own."""
        return False

    def __init__(
        self,
        *,
        mode: str = "strip",
        open_tag: str = "<reasoning>",
        close_tag: str = "</reasoning>",
        summary_chars: int = 40,
    ) -> None:
        self.mode = P.choice(NAME, "mode", mode, ("strip", "summary"))
        if not isinstance(open_tag, str) or not open_tag:
            raise ValueError(f"{NAME}: open_tag must be a non-empty string, got {open_tag!r}")
        if not isinstance(close_tag, str) or not close_tag:
            raise ValueError(f"{NAME}: close_tag must be a non-empty string, got {close_tag!r}")
        self.open_tag, self.close_tag = open_tag, close_tag
        self.summary_chars = P.integer(NAME, "summary_chars", summary_chars, 0, 1000)

    def transform(self, ctx: RequestContext, generations: list[Generation]) -> list[Generation]:
        out = [self.guard(g) for g in generations]
        for i, (before, after) in enumerate(zip(generations, out, strict=True)):
            if after is not before:  # the answer's reasoning was taken away
                self.record(ctx, "transform", removed="reasoning", mode=self.mode, sample=i)
        return out

    def guard(self, gen: Generation) -> Generation:
        text = gen.text
        edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in characters
        at = 0
        while (start := text.find(self.open_tag, at)) >= 0:
            inner = start + len(self.open_tag)
            close = text.find(self.close_tag, inner)
            end = len(text) if close < 0 else close + len(self.close_tag)
            if self.mode == "strip":
                while end < len(text) and text[end].isspace():
                    end += 1
                edits.append((start, end, ""))
            else:
                body = text[inner:close if close >= 0 else len(text)]
                edits.append((start, end, self.open_tag + self.summary(body) + self.close_tag))
            at = end
        if not edits:
            return gen
        out, kept_bytes, pos = [], [], 0
        for start, end, repl in edits:
            out.append(text[pos:start])
            kept_bytes.append((_blen(text[:pos]), _blen(text[:start])))
            out.append(repl)
            pos = end
        out.append(text[pos:])
        kept_bytes.append((_blen(text[:pos]), _blen(text)))
        logprobs = None if gen.logprobs is None else _keep(gen.logprobs, kept_bytes)
        return replace(gen, text="".join(out), logprobs=logprobs)

    def summary(self, body: str) -> str:
        lines = [ln.strip() for ln in body.strip().splitlines() if ln.strip()]
        if not lines:
            return ""
        first = lines[0]
        if len(first) > self.summary_chars:
            first = first[: self.summary_chars].rstrip() + "..."
        rest = len(lines) - 1
        if not self.summary_chars:
            return f"[{len(lines)} lines of reasoning hidden]"
        return first + (f" [{rest} more lines hidden]" if rest else "")


def _blen(s: str) -> int:
    return len(s.encode("utf-8"))


def _keep(lps: list[TokenLogprob], spans: list[tuple[int, int]]) -> list[TokenLogprob]:
    """The tokens whose bytes lie wholly inside one of ``spans`` (byte offsets)."""
    out, at = [], 0
    for lp in lps:
        lo, hi = at, at + len(lp.bytes)
        at = hi
        if any(a <= lo and hi <= b for a, b in spans):
            out.append(lp)
    return out
