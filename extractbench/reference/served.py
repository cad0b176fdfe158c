"""A served model: a :class:`~extractbench.reference.lm.TinyLM` behind a public name.

Stop sequences are handled here rather than in
:func:`~extractbench.reference.generation.generate` so
the server knows *which* sequence stopped a sample (Anthropic's ``stop_sequence``) and can
cut the logprobs at a token boundary: a logits processor forces ``<eos>`` as soon as a stop
sequence appears, and the text is cut at its first occurrence.

How long a prompt may be: the model reads at most :attr:`ServedModel.prompt_window` prompt
tokens (``<bos>``, the prompt's bytes, ``<sep>``) of its :attr:`ServedModel.context_tokens`.
With ``strict_context`` a longer prompt, or a prompt plus ``max_tokens`` over the context, is
refused as a vendor refuses it. Without (the default: the shipped classification task's prompts
are 155-191 tokens and its teacher was trained on their tails) the model's context is
``max_prompt_tokens`` prompt tokens, of which it attends to the last ``prompt_window`` (a
sliding window), and ``max_tokens`` is cut to the room left; a longer prompt is refused. Either
way ``usage`` reports every token sent (:meth:`ServedModel.input_tokens`), as a vendor bills
them. The server does the refusing (:mod:`extractbench.serving.context`); this module only says
what the limits are.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from extractbench.reference import tokenizer
from extractbench.reference.generation import generate
from extractbench.reference.lm import TinyLM
from extractbench.types import Generation, LogitsProcessor, SamplingParams

DEFAULT_MAX_PROMPT_TOKENS = 1024
"""The longest prompt a lenient served model accepts (it reads the tail)."""


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


@dataclass
class _Pending:
    prompt: str
    params: SamplingParams
    done: threading.Event
    result: Generation | None = None
    error: BaseException | None = None


class ServedModel:
    """A model the endpoint serves; model calls are serialised (one at a time).

    Concurrent greedy requests without logprobs, stops or logits processors (the bulk of a
    campaign) are batched: while one batch runs, the next requests queue, and whichever
    request thread takes the model next runs every queued request with the same parameters
    in one forward pass. Greedy decoding makes the answer independent of the batch it ran in.
    """

    max_batch = 32

    def __init__(self, name: str, model: TinyLM, *, strict_context: bool = False,
                 max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS) -> None:
        if max_prompt_tokens < 1:
            raise ValueError(f"max_prompt_tokens must be at least 1, got {max_prompt_tokens}")
        self.name = name
        self.model = model.eval()
        self.strict_context = strict_context
        """Refuse what the model cannot read whole (see the module docstring)."""
        self._max_prompt_tokens = max_prompt_tokens
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()

    @classmethod
    def load(cls, name: str, path: Path) -> ServedModel:
        return cls(name, TinyLM.load(path))

    @property
    def max_tokens(self) -> int:
        """Upper bound on completion length (the model's context)."""
        return int(self.model.cfg.max_len)

    @property
    def context_tokens(self) -> int:
        """The model's context: prompt and completion tokens together."""
        return int(self.model.cfg.max_len)

    @property
    def prompt_window(self) -> int:
        """The most prompt tokens the model reads (``<bos>`` and ``<sep>`` included)."""
        return int(self.model.cfg.max_prompt)

    @property
    def max_prompt_tokens(self) -> int:
        """The longest prompt accepted, in tokens: :attr:`prompt_window` when strict."""
        if self.strict_context:
            return self.prompt_window
        return max(self._max_prompt_tokens, self.prompt_window)

    def input_tokens(self, prompt: str) -> int:
        """Tokens of the whole prompt as sent (``<bos> prompt-bytes <sep>``), before any is
        left unread; cheap for any length (nothing is tokenized). What ``usage`` reports and
        what is billed: a vendor bills every input token, read or not."""
        return len(prompt.encode("utf-8", errors="surrogatepass")) + 2

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this model's byte tokenizer."""
        return len(tokenizer.encode(text))

    def read_tokens(self, prompt: str) -> int:
        """Input tokens the model reads for ``prompt`` (``<bos> ... <sep>``, tail kept)."""
        return len(tokenizer.prompt_ids(prompt, self.model.cfg.max_prompt))

    def generate(
        self,
        prompt: str,
        params: SamplingParams,
        n: int = 1,
        processors: Sequence[LogitsProcessor] = (),
    ) -> list[Generation]:
        """``n`` samples for ``prompt``; with a seed, sample ``i`` uses ``seed + i``."""
        if (n == 1 and not processors and params.temperature <= 0
                and params.top_logprobs is None and not any(params.stop)):
            return [self._batched(prompt, params)]
        out: list[Generation] = []
        with self._lock:
            for i in range(n):
                seed = None if params.seed is None else params.seed + i
                out.append(self._sample(prompt, replace(params, seed=seed), processors))
        return out

    def _batched(self, prompt: str, params: SamplingParams) -> Generation:
        me = _Pending(prompt, params, threading.Event())
        with self._queue_lock:
            self._queue.append(me)
        while not me.done.is_set():
            with self._lock:
                if me.done.is_set():
                    break
                with self._queue_lock:
                    batch = [p for p in self._queue if p.params == me.params][: self.max_batch]
                    for p in batch:
                        self._queue.remove(p)
                try:
                    gens = generate(self.model, [p.prompt for p in batch], me.params)
                    for p, g in zip(batch, gens, strict=True):
                        p.result = ServedGeneration(
                            text=g.text, finish_reason=g.finish_reason,
                            prompt_tokens=self.input_tokens(p.prompt),
                            completion_tokens=g.completion_tokens,
                        )
                except BaseException as exc:  # hand the failure to every waiting request
                    for p in batch:
                        p.error = exc
                    raise
                finally:
                    for p in batch:
                        p.done.set()
        if me.error is not None:
            raise me.error
        assert me.result is not None
        return me.result

    def _sample(
        self, prompt: str, params: SamplingParams, processors: Sequence[LogitsProcessor]
    ) -> ServedGeneration:
        stops = tuple(s for s in params.stop if s)
        # Ask for (at least) the chosen token's logprob: its bytes are the raw sample.
        inner = replace(params, stop=(), top_logprobs=params.top_logprobs or 0)
        procs = list(processors)
        if stops:
            procs.append(_stop_processor(self.read_tokens(prompt), stops))
        gen = generate(self.model, [prompt], inner, procs)[0]
        lps = gen.logprobs or []
        raw = [b for lp in lps for b in lp.bytes]
        hits = [(gen.text.find(s), s) for s in stops if s in gen.text]
        if not hits:
            return ServedGeneration(
                text=gen.text,
                finish_reason=gen.finish_reason,
                prompt_tokens=self.input_tokens(prompt),
                completion_tokens=gen.completion_tokens,
                logprobs=lps if params.top_logprobs is not None else None,
            )
        cut, stop = min(hits)
        text = gen.text[:cut]
        kept = max(k for k in range(len(raw) + 1) if text.startswith(tokenizer.decode(raw[:k])))
        return ServedGeneration(
            text=text,
            finish_reason="stop",
            prompt_tokens=self.input_tokens(prompt),
            completion_tokens=len(raw),  # every sampled token, the stop sequence's included
            logprobs=lps[:kept] if params.top_logprobs is not None else None,
            stop_sequence=stop,
        )
