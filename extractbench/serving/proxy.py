"""The defense proxy: the same HTTP API as its upstream, with a defense stack in front.

    app = create_proxy_app("https://api.openai.com/v1", "openai", os.environ["OPENAI_API_KEY"],
                           stack, {"sk-client-1": "team-a"})

Requests are read and validated by the same wire models as the reference server's and run
through the same :class:`~extractbench.serving.pipeline.Pipeline`; its generation step is one
non-streaming upstream call with the proxy's own upstream key, sending the client's body with
the adjusted settings written in. The answer is the upstream's response with the transformed
text and logprobs (as server-sent events when the client asked to stream).

Keys: the client's key is never sent upstream (the upstream request is built from scratch with
the proxy's key) and neither key is ever logged or echoed; upstream error messages are
scrubbed of the upstream key. Sampling-time defenses (logits processors) cannot run here: the
stack is refused when it has one.

``upstream_base_url`` follows the SDKs' convention: for ``openai`` it includes ``/v1``
(``https://api.openai.com/v1``), for ``anthropic`` it is the root (``https://api.anthropic.com``).

torch is not imported on this path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from extractbench.defenses import DefenseStack
from extractbench.serving import relay, wire_anthropic, wire_openai
from extractbench.serving.auth import require_key
from extractbench.serving.body import parse_body_raw
from extractbench.serving.errors import install_error_handlers
from extractbench.serving.pipeline import Pipeline, Query, Step, attach, pipeline_of
from extractbench.serving.streaming import sse_response
from extractbench.serving.upstream import JSON, ProxyApi, Upstream
from extractbench.types import Generation

__all__ = ["ProxyApi", "ProxyState", "create_proxy_app"]


class ProxyState:
    """What the proxy app holds: its :class:`Pipeline` (client keys, query indices, the
    stack) and its :class:`Upstream` (and the upstream key, never shown).

    ``app.state.extractbench_proxy`` is one, for code written before
    :func:`~extractbench.serving.pipeline_of`; ``.stack`` and ``.reset()`` are the
    pipeline's."""

    def __init__(self, upstream_base_url: str, api: ProxyApi, upstream_key: str,
                 stack: DefenseStack | None, keys: dict[str, str], timeout_s: float,
                 log: Callable[[str], None]) -> None:
        self.pipeline = Pipeline(stack, keys, local_sampling=False)
        self.upstream = Upstream(upstream_base_url, api, upstream_key, timeout_s, log)

    def __repr__(self) -> str:
        return (f"ProxyState({self.api} {self.upstream.base}, "
                f"keys={sorted(set(self.keys.values()))})")

    @property
    def api(self) -> ProxyApi:
        return self.upstream.api

    @property
    def stack(self) -> DefenseStack:
        return self.pipeline.stack

    @property
    def keys(self) -> dict[str, str]:
        return self.pipeline.keys

    def reset(self) -> None:
        """Query indices from 0 and the defenses' per-key state forgotten (between cells)."""
        self.pipeline.reset()


class _UpstreamStep:
    """The pipeline's generation step for one request: the upstream call; keeps the raw
    answer for the response."""

    def __init__(self, upstream: Upstream, request: Request, path: str, body: JSON) -> None:
        self.upstream, self.request, self.path, self.body = upstream, request, path, body
        self.answer: JSON = {}

    async def __call__(self, step: Step) -> list[Generation]:
        if self.upstream.api == "openai":
            sent = relay.rewrite_openai(self.body, step.asked.params, step.ctx.params)
        else:
            sent = relay.rewrite_anthropic(self.body, step.asked.params, step.ctx.params)
        self.answer = await self.upstream.call("POST", self.path, self.request, sent)
        if self.upstream.api == "openai":
            return relay.openai_generations(self.answer)
        return [relay.anthropic_generation(self.answer)]


def _upstream(request: Request) -> Upstream:
    upstream: Upstream = request.app.state.extractbench_upstream
    return upstream


def _strips_reasoning(stack: DefenseStack) -> bool:
    return stack.find("reasoning-guard") is not None


openai_router = APIRouter()
anthropic_router = APIRouter()


@openai_router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    key_id = require_key(request)
    req, body = await parse_body_raw(request, wire_openai.ChatRequest)
    pipeline = pipeline_of(request.app)
    query = Query("openai", request.url.path, key_id, req.model, req.prompt(),
                  req.params(None), req.n or 1)
    call = _UpstreamStep(_upstream(request), request, "/chat/completions", body)
    gens = await pipeline.run_async(query, call)
    out = relay.apply_openai(call.answer, gens, _strips_reasoning(pipeline.stack))
    if req.stream:
        head = {k: out.get(k) for k in ("id", "created", "model", "system_fingerprint")}
        return sse_response(wire_openai.chat_chunks(head, gens, req.include_usage))
    return JSONResponse(out)


@anthropic_router.post("/v1/messages")
async def messages(request: Request) -> Response:
    key_id = require_key(request)
    req, body = await parse_body_raw(request, wire_anthropic.MessagesRequest)
    pipeline = pipeline_of(request.app)
    query = Query("anthropic", request.url.path, key_id, req.model, req.prompt(),
                  req.params(None))
    call = _UpstreamStep(_upstream(request), request, "/v1/messages", body)
    gens = await pipeline.run_async(query, call)
    out = relay.apply_anthropic(call.answer, gens[0], _strips_reasoning(pipeline.stack))
    if req.stream:
        return sse_response(wire_anthropic.message_events(out, gens[0]))
    return JSONResponse(out)


async def _models(request: Request) -> Response:
    require_key(request)
    upstream = _upstream(request)
    path = "/models" if upstream.api == "openai" else "/v1/models"
    return JSONResponse(await upstream.call("GET", path, request))


def create_proxy_app(
    upstream_base_url: str,
    api: ProxyApi,
    upstream_key: str,
    stack: DefenseStack | None,
    keys: dict[str, str],
    *,
    timeout_s: float = 60.0,
    log: Callable[[str], None] | None = None,
) -> FastAPI:
    """A FastAPI app serving ``api`` (OpenAI chat completions or Anthropic messages, plus
    ``GET /v1/models``) to ``keys`` (client API key -> key id) in front of
    ``upstream_base_url``, called with ``upstream_key``, behind ``stack``. ``log`` receives
    one line per distinct upstream problem (default: stderr). Raises ``ValueError`` for a
    stack with sampling-time defenses, an unknown ``api`` or an empty key map."""
    if api not in ("openai", "anthropic"):
        raise ValueError(f"api must be 'openai' or 'anthropic', got {api!r}")
    if not upstream_base_url.startswith(("http://", "https://")):
        raise ValueError(f"upstream URL must start with http:// or https://, "
                         f"got {upstream_base_url!r}")
    if not keys:
        raise ValueError("the proxy needs at least one client key (ID=KEY)")

    def to_stderr(line: str) -> None:
        print(f"extractbench proxy: {line}", file=sys.stderr, flush=True)

    state = ProxyState(upstream_base_url, api, upstream_key, stack, keys, timeout_s,
                       log or to_stderr)
    app = FastAPI(title="extractbench defense proxy", docs_url=None, redoc_url=None,
                  openapi_url=None)
    attach(app, state.pipeline)
    app.state.extractbench_upstream = state.upstream
    # Deprecated: the runner reads .stack / .reset() here until it uses pipeline_of(app).
    app.state.extractbench_proxy = state
    install_error_handlers(app)
    app.include_router(openai_router if api == "openai" else anthropic_router)
    app.add_api_route("/v1/models", _models, methods=["GET"])
    return app
