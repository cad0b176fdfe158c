"""The reference app's OpenAI routes: ``/v1/chat/completions`` and ``/v1/completions``.

Wire models and renderers are in :mod:`extractbench.serving.wire_openai`; the request flow is
the shared :class:`~extractbench.serving.pipeline.Pipeline`, run in a worker thread with the
served model as its generation step. A prompt the model would not read whole is refused first,
in the vendor's words (:mod:`extractbench.serving.context`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from extractbench.reference import tokenizer
from extractbench.serving import wire_openai as wire
from extractbench.serving.auth import require_key
from extractbench.serving.body import parse_body
from extractbench.serving.catalog import catalog_of, generation_step
from extractbench.serving.context import check_prompt, completion_limit
from extractbench.serving.pipeline import Query, pipeline_of
from extractbench.serving.streaming import sse_response

router = APIRouter()
VOCAB = {"vocab_size": tokenizer.VOCAB_SIZE}
"""Validation context: the reference models' byte tokenizer bounds ``logit_bias`` ids."""


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, key_id: str = Depends(require_key)) -> Response:
    req = await parse_body(request, wire.ChatRequest, VOCAB)
    served = catalog_of(request.app).model(req.model)
    prompt = req.prompt()
    tokens = check_prompt(served, prompt, "chat")
    limit = completion_limit(served, tokens, req.max_completion_tokens or req.max_tokens, "chat")
    query = Query("openai", request.url.path, key_id, served.name, prompt, req.params(limit),
                  req.n or 1, sim_time=pipeline_of(request.app).sim_time(request.headers))
    gens = await run_in_threadpool(pipeline_of(request.app).run, query, generation_step(served))
    head = wire.chat_head(served.name)
    if req.stream:
        return sse_response(wire.chat_chunks(head, gens, req.include_usage))
    return JSONResponse(wire.chat_body(head, gens))


@router.post("/v1/completions")
async def completions(request: Request, key_id: str = Depends(require_key)) -> Response:
    req = await parse_body(request, wire.CompletionRequest, VOCAB)
    served = catalog_of(request.app).model(req.model)
    prompt = req.text()
    asked = req.max_tokens or 16
    tokens = check_prompt(served, prompt, "completions", asked)
    limit = completion_limit(served, tokens, asked, "completions")
    query = Query("openai", request.url.path, key_id, served.name, prompt, req.params(limit),
                  req.n or 1, sim_time=pipeline_of(request.app).sim_time(request.headers))
    gens = await run_in_threadpool(pipeline_of(request.app).run, query, generation_step(served))
    head = wire.completion_head(served.name)
    if req.stream:
        return sse_response(wire.completion_chunks(head, gens, len(prompt), req.include_usage))
    return JSONResponse(wire.completion_body(head, gens, len(prompt)))
