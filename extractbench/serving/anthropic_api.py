"""The reference app's Anthropic routes: ``/v1/messages`` and ``/v1/messages/count_tokens``.

Wire models and renderers are in :mod:`extractbench.serving.wire_anthropic`; the request flow
is the shared :class:`~extractbench.serving.pipeline.Pipeline`, run in a worker thread with the
served model as its generation step. A prompt the model would not read whole is refused first,
in the vendor's words (:mod:`extractbench.serving.context`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from extractbench.serving import wire_anthropic as wire
from extractbench.serving.auth import require_key
from extractbench.serving.body import parse_body
from extractbench.serving.catalog import catalog_of, generation_step
from extractbench.serving.context import check_prompt, completion_limit
from extractbench.serving.pipeline import Query, pipeline_of
from extractbench.serving.streaming import sse_response

router = APIRouter()


@router.post("/v1/messages")
async def messages(request: Request, key_id: str = Depends(require_key)) -> Response:
    req = await parse_body(request, wire.MessagesRequest)
    served = catalog_of(request.app).model(req.model)
    prompt = req.prompt()
    tokens = check_prompt(served, prompt, "messages")
    limit = completion_limit(served, tokens, req.max_tokens, "messages")
    query = Query("anthropic", request.url.path, key_id, served.name, prompt, req.params(limit),
                  sim_time=pipeline_of(request.app).sim_time(request.headers))
    gens = await run_in_threadpool(pipeline_of(request.app).run, query, generation_step(served))
    msg = wire.message_body(served.name, gens[0])
    if req.stream:
        return sse_response(wire.message_events(msg, gens[0]))
    return JSONResponse(msg)


@router.post("/v1/messages/count_tokens")
async def count_tokens(request: Request, key_id: str = Depends(require_key)) -> Response:
    """Input tokens the request would be billed (not a query: no defenses, no index)."""
    req = await parse_body(request, wire.CountTokensRequest)
    served = catalog_of(request.app).model(req.model)
    prompt = req.prompt()
    check_prompt(served, prompt, "messages")
    return JSONResponse({"input_tokens": served.input_tokens(prompt)})
