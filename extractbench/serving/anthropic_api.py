"""Anthropic-compatible route: ``/v1/messages`` (with the full SSE event sequence).

Response shapes follow the ``anthropic`` SDK's types (``Message`` and the ``Raw*Event``s).
The system prompt is accepted but not shown to the model; ``top_k`` is accepted and ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from extractbench.reference.served import stop_sequence_of
from extractbench.serving.auth import require_key
from extractbench.serving.body import parse_body
from extractbench.serving.state import ServerState
from extractbench.serving.streaming import pieces, sse, sse_response
from extractbench.types import Generation, SamplingParams

router = APIRouter()


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

    def params(self, limit: int) -> SamplingParams:
        return SamplingParams(
            max_tokens=min(self.max_tokens, limit),
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            stop=tuple(self.stop_sequences or ()),
        )


def stop_reason(gen: Generation) -> str:
    if gen.finish_reason == "length":
        return "max_tokens"
    return "stop_sequence" if stop_sequence_of(gen) is not None else "end_turn"


@router.post("/v1/messages")
async def messages(request: Request, key_id: str = Depends(require_key)) -> Response:
    req = await parse_body(request, MessagesRequest)
    state: ServerState = request.app.state.extractbench
    served = state.model(req.model)
    gens = await run_in_threadpool(
        state.run, "anthropic", request.url.path, key_id, served,
        req.prompt(), req.params(served.max_tokens),
    )
    gen = gens[0]
    msg: dict[str, Any] = {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": served.name,
        "content": [{"type": "text", "text": gen.text}],
        "stop_reason": stop_reason(gen),
        "stop_sequence": stop_sequence_of(gen),
        "usage": {"input_tokens": gen.prompt_tokens, "output_tokens": gen.completion_tokens},
    }
    if req.stream:
        return sse_response(_events(msg, gen))
    return JSONResponse(msg)


@router.post("/v1/messages/count_tokens")
async def count_tokens(request: Request, key_id: str = Depends(require_key)) -> Response:
    """Input tokens the request would be billed (not a query: no defenses, no index)."""
    req = await parse_body(request, CountTokensRequest)
    state: ServerState = request.app.state.extractbench
    served = state.model(req.model)
    return JSONResponse({"input_tokens": served.prompt_tokens(req.prompt())})


def _events(msg: dict[str, Any], gen: Generation) -> Iterator[str]:
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
