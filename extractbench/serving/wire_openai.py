"""The OpenAI wire format, for both apps: request models (parsing and validation) for
``/v1/chat/completions`` and ``/v1/completions``, and their JSON and SSE renderers.

Shapes follow the ``openai`` SDK's types (``ChatCompletion``, ``ChatCompletionChunk``,
``Completion``). Unknown request fields are accepted and ignored. A ``vocab_size`` in the
validation context bounds ``logit_bias`` token ids (the reference server's tokenizer); without
it (the proxy: the upstream's vocabulary is unknown) any non-negative id is accepted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from extractbench.reference import tokenizer
from extractbench.serving.streaming import pieces, sse
from extractbench.types import Generation, SamplingParams, TokenLogprob

DEFAULT_MAX_TOKENS = 1024
"""What a request without ``max_tokens`` may generate when the app knows no model limit."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Lenient):
    type: str = "text"
    text: str | None = None


class ChatMessage(_Lenient):
    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content or [] if p.type == "text")


class StreamOptions(_Lenient):
    include_usage: bool | None = False


class _Common(_Lenient):
    """Fields shared by chat and legacy completions."""

    model: str
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=8)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)  # OpenAI's int64
    stop: str | list[str] | None = None
    logit_bias: dict[str, float] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences")
        return v

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, v: dict[str, float] | None, info: ValidationInfo
              ) -> dict[str, float] | None:
        vocab = (info.context or {}).get("vocab_size")
        for tok, bias in (v or {}).items():
            if vocab is not None:
                if not tok.isdigit() or not 0 <= int(tok) < vocab:
                    raise ValueError(f"key {tok!r} is not a token id (0..{vocab - 1})")
            elif not tok.isdigit() or int(tok) < 0:
                raise ValueError(f"key {tok!r} is not a token id (a non-negative integer)")
            if not -100 <= bias <= 100:
                raise ValueError(f"bias for token {tok} must be in [-100, 100]")
        return v

    def _params(self, max_tokens: int, top_logprobs: int | None) -> SamplingParams:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            seed=self.seed,
            stop=stop,
            top_logprobs=top_logprobs,
            logit_bias={int(k): v for k, v in (self.logit_bias or {}).items()},
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatRequest(_Common):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = False
    top_logprobs: int | None = Field(None, ge=0, le=20)

    @model_validator(mode="after")
    def _check(self) -> ChatRequest:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs: requires logprobs=true")
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("messages: needs at least one message with role 'user'")
        return self

    def prompt(self) -> str:
        """The model sees the last user message only."""
        return next(m for m in reversed(self.messages) if m.role == "user").text()

    def params(self, limit: int | None) -> SamplingParams:
        """Sampling settings, ``max_tokens`` capped at the model's ``limit`` (``None``: no
        known limit; an unset ``max_tokens`` is then :data:`DEFAULT_MAX_TOKENS`)."""
        top = (self.top_logprobs or 0) if self.logprobs else None
        asked = self.max_completion_tokens or self.max_tokens
        if limit is None:
            return self._params(asked or DEFAULT_MAX_TOKENS, top)
        return self._params(min(asked or limit, limit), top)


class CompletionRequest(_Common):
    prompt: str | list[str]
    max_tokens: int | None = Field(16, ge=1)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool | None = False

    @model_validator(mode="after")
    def _check(self) -> CompletionRequest:
        if isinstance(self.prompt, list) and len(self.prompt) != 1:
            raise ValueError("prompt: send one string (batched prompts are not supported)")
        if self.echo:
            raise ValueError("echo: not supported")
        return self

    def text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]

    def params(self, limit: int | None) -> SamplingParams:
        asked = self.max_tokens or 16
        return self._params(asked if limit is None else min(asked, limit), self.logprobs)


# -- rendering -------------------------------------------------------------------------------


def chat_head(model: str) -> dict[str, Any]:
    """A fresh chat completion's ``id``, ``created``, ``model``, ``system_fingerprint``."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
    }


def completion_head(model: str) -> dict[str, Any]:
    return {
        "id": f"cmpl-{uuid.uuid4().hex[:24]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
    }


def usage(gens: list[Generation]) -> dict[str, int]:
    prompt = gens[0].prompt_tokens if gens else 0
    completion = sum(g.completion_tokens for g in gens)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def chat_logprobs(lps: list[TokenLogprob]) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": lp.token,
                "logprob": lp.logprob,
                "bytes": lp.bytes,
                "top_logprobs": [
                    {"token": t.token, "logprob": t.logprob, "bytes": t.bytes} for t in lp.top
                ],
            }
            for lp in lps
        ],
        "refusal": None,
    }


def legacy_logprobs(lps: list[TokenLogprob], offset: int) -> dict[str, Any]:
    """Legacy shape; ``text_offset`` counts characters from the start of the prompt."""
    raw: list[int] = []
    offsets = []
    for lp in lps:
        offsets.append(offset + len(tokenizer.decode(raw)))
        raw.extend(lp.bytes)
    return {
        "tokens": [lp.token for lp in lps],
        "token_logprobs": [lp.logprob for lp in lps],
        "top_logprobs": [{t.token: t.logprob for t in lp.top} for lp in lps],
        "text_offset": offsets,
    }


def chat_body(head: dict[str, Any], gens: list[Generation]) -> dict[str, Any]:
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": g.text, "refusal": None},
            "logprobs": None if g.logprobs is None else chat_logprobs(g.logprobs),
            "finish_reason": g.finish_reason,
        }
        for i, g in enumerate(gens)
    ]
    return {**head, "object": "chat.completion", "choices": choices, "usage": usage(gens)}


def chat_chunks(head: dict[str, Any], gens: list[Generation], with_usage: bool
                ) -> Iterator[str]:
    base = {**head, "object": "chat.completion.chunk"}
    if with_usage:
        base["usage"] = None

    def chunk(i: int, delta: dict[str, Any], lps: Any = None, finish: str | None = None) -> str:
        choice = {"index": i, "delta": delta, "logprobs": lps, "finish_reason": finish}
        return sse({**base, "choices": [choice]})

    for i, g in enumerate(gens):
        yield chunk(i, {"role": "assistant", "content": ""})
        for text, lps in pieces(g):
            yield chunk(i, {"content": text}, None if g.logprobs is None else chat_logprobs(lps))
        yield chunk(i, {}, finish=g.finish_reason)
    if with_usage:
        yield sse({**base, "choices": [], "usage": usage(gens)})
    yield sse("[DONE]")


def completion_body(head: dict[str, Any], gens: list[Generation], offset: int
                    ) -> dict[str, Any]:
    """``offset``: the prompt's length in characters (where ``text_offset`` starts)."""
    choices = [
        {
            "index": i,
            "text": g.text,
            "logprobs": None if g.logprobs is None else legacy_logprobs(g.logprobs, offset),
            "finish_reason": g.finish_reason,
        }
        for i, g in enumerate(gens)
    ]
    return {**head, "choices": choices, "usage": usage(gens)}


def completion_chunks(head: dict[str, Any], gens: list[Generation], offset: int,
                      with_usage: bool) -> Iterator[str]:
    base = {**head, "usage": None} if with_usage else dict(head)

    def chunk(i: int, text: str, lps: Any = None, finish: str | None = None) -> str:
        choice = {"index": i, "text": text, "logprobs": lps, "finish_reason": finish}
        return sse({**base, "choices": [choice]})

    for i, g in enumerate(gens):
        at = offset
        for text, lps in pieces(g):
            yield chunk(i, text, None if g.logprobs is None else legacy_logprobs(lps, at))
            at += len(text)
        yield chunk(i, "", finish=g.finish_reason)
    if with_usage:
        yield sse({**base, "choices": [], "usage": usage(gens)})
    yield sse("[DONE]")
