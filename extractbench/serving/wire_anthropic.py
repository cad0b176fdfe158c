"""The Anthropic wire format, for both apps: request models (parsing and validation) for
``/v1/messages`` and ``/v1/messages/count_tokens``, and the message's JSON and SSE renderers
(the full event sequence).

Shapes follow the ``anthropic`` SDK's types (``Message`` and the ``Raw*Event``s). The system
prompt is accepted but not shown to the model; ``top_k`` is accepted and ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from extractbench.serving.streaming import pieces, sse
from extractbench.types import Generation, SamplingParams


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Block(_Lenient):
    type: str
    text: str | None = None


class Message(_Lenient):
    role: Literal["user", "assistant"]
    content: str | list[Block]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(b.text or "" for b in self.content if b.type == "text")


class CountTokensRequest(_Lenient):
    model: str
    messages: list[Message] = Field(min_length=1)
    system: str | list[Block] | None = None

    @model_validator(mode="after")
    def _check(self) -> CountTokensRequest:
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("messages: needs at least one message with role 'user'")
        return self

    def prompt(self) -> str:
        """The model sees the last user message only."""
        return next(m for m in reversed(self.messages) if m.role == "user").text()


class MessagesRequest(CountTokensRequest):
    max_tokens: int = Field(ge=1)
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    stop_sequences: list[str] | None = None
    stream: bool | None = False

    def params(self, limit: int | None) -> SamplingParams:
        """Sampling settings, ``max_tokens`` capped at the model's ``limit`` (``None``: no
        known limit)."""
        return SamplingParams(
            max_tokens=self.max_tokens if limit is None else min(self.max_tokens, limit),
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            stop=tuple(self.stop_sequences or ()),
        )


# -- rendering -------------------------------------------------------------------------------


def stop_sequence(gen: Generation) -> str | None:
    """The stop sequence that ended ``gen``, when the generation says (the reference
    server's ``ServedGeneration`` does; read by duck typing, which keeps torch out)."""
    seq = getattr(gen, "stop_sequence", None)
    return seq if isinstance(seq, str) else None


def stop_reason(gen: Generation) -> str:
    if gen.finish_reason == "length":
        return "max_tokens"
    return "stop_sequence" if stop_sequence(gen) is not None else "end_turn"


def message_body(model: str, gen: Generation) -> dict[str, Any]:
    """A fresh ``Message`` holding ``gen``."""
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": gen.text}],
        "stop_reason": stop_reason(gen),
        "stop_sequence": stop_sequence(gen),
        "usage": {"input_tokens": gen.prompt_tokens, "output_tokens": gen.completion_tokens},
    }


def message_events(msg: dict[str, Any], gen: Generation) -> Iterator[str]:
    """The stream of ``msg`` (its id, model, stop reason) with the text of ``gen``."""
    start = {
        **msg,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": gen.prompt_tokens, "output_tokens": 0},
    }
    yield sse({"type": "message_start", "message": start}, "message_start")
    empty = {"type": "text", "text": ""}
    block = {"type": "content_block_start", "index": 0, "content_block": empty}
    yield sse(block, "content_block_start")
    yield sse({"type": "ping"}, "ping")
    for text, _ in pieces(gen):
        if text:
            delta = {"type": "text_delta", "text": text}
            yield sse({"type": "content_block_delta", "index": 0, "delta": delta},
                      "content_block_delta")
    yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    delta = {"stop_reason": msg["stop_reason"], "stop_sequence": msg["stop_sequence"]}
    usage = {"output_tokens": gen.completion_tokens}
    yield sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta")
    yield sse({"type": "message_stop"}, "message_stop")
