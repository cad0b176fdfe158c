"""A served model: a :class:`~extractbench.lm.TinyLM` behind a public name.

Stop sequences are handled here rather than in :func:`~extractbench.generation.generate` so
the server knows *which* sequence stopped a sample (Anthropic's ``stop_sequence``) and can
cut the logprobs at a token boundary: a logits processor forces ``<eos>`` as soon as a stop
sequence appears, and the text is cut at its first occurrence.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from extractbench import tokenizer
from extractbench.generation import Generation, LogitsProcessor, SamplingParams, generate
from extractbench.lm import TinyLM


@dataclass(frozen=True)
class ServedGeneration(Generation):
    """A :class:`Generation` that also says which stop sequence ended it, if one did."""

    stop_sequence: str | None = None


def stop_sequence_of(gen: Generation) -> str | None:
    """The stop sequence that ended ``gen`` (``None`` for end of text, length, or unknown)."""
    return gen.stop_sequence if isinstance(gen, ServedGeneration) else None


def _stop_processor(prompt_len: int, stops: tuple[str, ...]) -> LogitsProcessor:
    """Force ``<eos>`` once the generated text contains one of ``stops`` (batch of one)."""

    def proc(ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        text = tokenizer.decode(ids[0, prompt_len:].tolist())
        if any(s in text for s in stops):
            forced = torch.full_like(logits, -1e9)
            forced[:, tokenizer.EOS] = 0.0
            return forced
        return logits

    return proc


class ServedModel:
    """A model the endpoint serves; model calls are serialised (one at a time)."""

    def __init__(self, name: str, model: TinyLM) -> None:
        self.name = name
        self.model = model.eval()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, name: str, path: Path) -> ServedModel:
        return cls(name, TinyLM.load(path))

    @property
    def max_tokens(self) -> int:
        """Upper bound on completion length (the model's context)."""
        return int(self.model.cfg.max_len)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model's byte tokenizer."""
        return len(tokenizer.encode(text))

    def prompt_tokens(self, prompt: str) -> int:
        """Input tokens the model reads for ``prompt`` (``<bos> ... <sep>``, tail kept):
        what ``usage`` reports."""
        return len(tokenizer.prompt_ids(prompt, self.model.cfg.max_prompt))

    def generate(
        self,
        prompt: str,
        params: SamplingParams,
        n: int = 1,
        processors: Sequence[LogitsProcessor] = (),
    ) -> list[Generation]:
        """``n`` samples for ``prompt``; with a seed, sample ``i`` uses ``seed + i``."""
        out: list[Generation] = []
        with self._lock:
            for i in range(n):
                seed = None if params.seed is None else params.seed + i
                out.append(self._sample(prompt, replace(params, seed=seed), processors))
        return out

    def _sample(
        self, prompt: str, params: SamplingParams, processors: Sequence[LogitsProcessor]
    ) -> ServedGeneration:
        stops = tuple(s for s in params.stop if s)
        # Ask for (at least) the chosen token's logprob: its bytes are the raw sample.
        inner = replace(params, stop=(), top_logprobs=params.top_logprobs or 0)
        procs = list(processors)
        if stops:
            procs.append(_stop_processor(self.prompt_tokens(prompt), stops))
        gen = generate(self.model, [prompt], inner, procs)[0]
        lps = gen.logprobs or []
        raw = [b for lp in lps for b in lp.bytes]
        hits = [(gen.text.find(s), s) for s in stops if s in gen.text]
        if not hits:
            return ServedGeneration(
                text=gen.text,
                finish_reason=gen.finish_reason,
                prompt_tokens=gen.prompt_tokens,
                completion_tokens=gen.completion_tokens,
                logprobs=lps if params.top_logprobs is not None else None,
            )
        cut, stop = min(hits)
        text = gen.text[:cut]
        kept = max(k for k in range(len(raw) + 1) if text.startswith(tokenizer.decode(raw[:k])))
        return ServedGeneration(
            text=text,
            finish_reason="stop",
            prompt_tokens=gen.prompt_tokens,
            completion_tokens=len(raw),  # every sampled token, the stop sequence's included
            logprobs=lps[:kept] if params.top_logprobs is not None else None,
            stop_sequence=stop,
        )
