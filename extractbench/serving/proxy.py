"""The defense proxy: the same HTTP API as its upstream, with a defense stack in front.

    app = create_proxy_app("https://api.openai.com/v1", "openai", os.environ["OPENAI_API_KEY"],
                           stack, {"sk-client-1": "team-a"})

Per request: authenticate the client's key (its id is what defenses and logs see) ->
``check_request`` (a rejection answers in the API's error shape) -> ``adjust`` (the adjusted
settings are written into the body sent upstream) -> one non-streaming upstream call with the
proxy's own upstream key -> ``transform`` on the answer -> the upstream's response with the
transformed text and logprobs (as server-sent events when the client asked to stream).

Keys: the client's key is never sent upstream (the upstream request is built from scratch with
the proxy's key) and neither key is ever logged or echoed; upstream error messages are
scrubbed of the upstream key. Sampling-time defenses (logits processors) cannot run here: the
stack is refused when it has one.

``upstream_base_url`` follows the SDKs' convention: for ``openai`` it includes ``/v1``
(``https://api.openai.com/v1``), for ``anthropic`` it is the root (``https://api.anthropic.com``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Literal

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from extractbench.defenses import DefenseStack, RequestContext
from extractbench.endpoints.clients import scrub
from extractbench.serving import upstream as convert
from extractbench.serving.errors import ApiError, install_error_handlers
from extractbench.serving.streaming import sse_response
from extractbench.serving.upstream import JSON, BadRequest, Parsed

ProxyApi = Literal["openai", "anthropic"]
ANTHROPIC_VERSION = "2023-06-01"


class ProxyState:
    """What the proxy app holds: the upstream (and its key, never shown), keys, the stack."""

    def __init__(self, upstream_base_url: str, api: ProxyApi, upstream_key: str,
                 stack: DefenseStack, keys: dict[str, str], timeout_s: float,
                 log: Callable[[str], None]) -> None:
        self.base = upstream_base_url.rstrip("/")
        self.api: ProxyApi = api
        self._upstream_key = upstream_key
        self.stack = stack
        self.keys = dict(keys)
        self.timeout_s = timeout_s
        self._log = log
        self._logged: set[str] = set()
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._clients: dict[int, httpx.AsyncClient] = {}

    def __repr__(self) -> str:
        return f"ProxyState({self.api} {self.base}, keys={sorted(set(self.keys.values()))})"

    # -- bookkeeping ------------------------------------------------------------------------

    def next_index(self, key_id: str) -> int:
        with self._lock:
            index = self._counts[key_id]
            self._counts[key_id] += 1
            return index

    def reset(self) -> None:
        """Query indices from 0 and the defenses' per-key state forgotten (between cells)."""
        with self._lock:
            self._counts.clear()
        self.stack.reset()

    def warn(self, message: str) -> None:
        """One line for the operator, once per distinct message (keys scrubbed)."""
        line = scrub(message, [self._upstream_key])
        if line not in self._logged:
            self._logged.add(line)
            self._log(line)

    # -- upstream ---------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        loop = id(asyncio.get_running_loop())
        client = self._clients.get(loop)
        if client is None:
            # No keep-alive: the app has no shutdown hook to close pooled connections, and a
            # connection left open when the server stops is a leaked socket.
            limits = httpx.Limits(max_keepalive_connections=0)
            client = self._clients[loop] = httpx.AsyncClient(timeout=self.timeout_s,
                                                             limits=limits)
        return client

    def _headers(self, request: Request) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self.api == "anthropic":
            headers["x-api-key"] = self._upstream_key
            headers["anthropic-version"] = request.headers.get(
                "anthropic-version", ANTHROPIC_VERSION)
            beta = request.headers.get("anthropic-beta")
            if beta:
                headers["anthropic-beta"] = beta
        else:
            headers["authorization"] = f"Bearer {self._upstream_key}"
        return headers

    def url(self, path: str) -> str:
        """``path`` under the upstream (``/chat/completions`` for openai, ``/v1/messages``
        for anthropic)."""
        return f"{self.base}{path}"

    async def call(self, method: str, path: str, request: Request,
                   body: JSON | None = None) -> JSON:
        """The upstream's JSON answer, or :class:`ApiError` saying clearly what went wrong."""
        url = self.url(path)
        try:
            resp = await self._client().request(method, url, headers=self._headers(request),
                                                content=None if body is None
                                                else json.dumps(body).encode())
        except httpx.TimeoutException:
            self.warn(f"upstream {url} timed out after {self.timeout_s:g} s")
            raise ApiError(504, f"The upstream endpoint did not answer in {self.timeout_s:g} s.",
                           error_type="api_error") from None
        except httpx.HTTPError as exc:
            self.warn(f"upstream {url} unreachable ({type(exc).__name__}); check --upstream")
            raise ApiError(502, f"The upstream endpoint is unreachable ({type(exc).__name__}).",
                           error_type="api_error") from None
        if resp.status_code >= 400:
            raise self._upstream_error(resp, url)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self.warn(f"upstream {url} answered HTTP {resp.status_code} without a JSON object")
            raise ApiError(502, "The upstream endpoint answered with an unreadable body.",
                           error_type="api_error")
        return data

    def _upstream_error(self, resp: httpx.Response, url: str) -> ApiError:
        status = resp.status_code
        detail = scrub(_error_message(resp), [self._upstream_key])
        retry = _retry_after(resp)
        if status in (401, 403):
            self.warn(f"upstream {url} rejected the proxy's upstream key (HTTP {status}: "
                      f"{detail}); check the key variable")
            return ApiError(502, "The upstream endpoint rejected the proxy's credentials.",
                            error_type="api_error")
        if status == 429:
            return ApiError(429, f"Upstream rate limit: {detail}", retry_after=retry,
                            code=_error_code(resp))
        if status >= 500:
            self.warn(f"upstream {url} failed: HTTP {status}: {detail}")
            return ApiError(502, f"The upstream endpoint failed (HTTP {status}).",
                            error_type="api_error", retry_after=retry)
        return ApiError(status, f"Upstream: {detail}", code=_error_code(resp))


def _error_body(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    inner = data.get("error", data)
    return inner if isinstance(inner, dict) else {}


def _error_message(resp: httpx.Response) -> str:
    msg = _error_body(resp).get("message")
    if isinstance(msg, str) and msg:
        return msg.splitlines()[0][:300]
    return resp.reason_phrase or f"HTTP {resp.status_code}"


def _error_code(resp: httpx.Response) -> str | None:
    code = _error_body(resp).get("code")
    return code if isinstance(code, str) else None


def _retry_after(resp: httpx.Response) -> float | None:
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = resp.headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def _state(request: Request) -> ProxyState:
    state: ProxyState = request.app.state.extractbench_proxy
    return state


def _key_id(request: Request, state: ProxyState) -> str:
    key = request.headers.get("x-api-key", "").strip()
    if not key:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    if not key:
        raise ApiError(401, "Missing API key: send `Authorization: Bearer KEY` or `x-api-key`.")
    key_id = state.keys.get(key)
    if key_id is None:
        raise ApiError(401, "Incorrect API key provided.")
    return key_id


async def _body(request: Request) -> JSON:
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return data


def _parse(parse: Callable[[JSON], Parsed], body: JSON) -> Parsed:
    try:
        return parse(body)
    except BadRequest as exc:
        raise ApiError(400, str(exc), param=exc.param) from None


def _context(state: ProxyState, request: Request, key_id: str, parsed: Parsed
             ) -> RequestContext:
    return RequestContext(api=state.api, route=request.url.path, key_id=key_id,
                          index=state.next_index(key_id), model=parsed.model,
                          prompt=parsed.prompt, params=parsed.params, n=parsed.n)


def _guarded(state: ProxyState, ctx: RequestContext) -> RequestContext:
    rejection = state.stack.check_request(ctx)
    if rejection is not None:
        raise ApiError.from_rejection(rejection)
    return state.stack.adjust(ctx)


def _strips_reasoning(stack: DefenseStack) -> bool:
    return stack.find("reasoning-guard") is not None


openai_router = APIRouter()
anthropic_router = APIRouter()


@openai_router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    from extractbench.serving.openai_api import _chat_chunks

    state = _state(request)
    key_id = _key_id(request, state)
    body = await _body(request)
    parsed = _parse(convert.parse_openai, body)
    ctx = _context(state, request, key_id, parsed)
    adjusted = _guarded(state, ctx)
    upstream = convert.rewrite_openai(body, ctx.params, adjusted.params)
    resp = await state.call("POST", "/chat/completions", request, upstream)
    gens = state.stack.transform(adjusted, convert.openai_generations(resp))
    out = convert.apply_openai(resp, gens, _strips_reasoning(state.stack))
    if parsed.stream:
        head = {k: out.get(k) for k in ("id", "created", "model", "system_fingerprint")}
        options = body.get("stream_options")
        usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return sse_response(_chat_chunks(head, gens, usage))
    return JSONResponse(out)


@anthropic_router.post("/v1/messages")
async def messages(request: Request) -> Response:
    from extractbench.serving.anthropic_api import _events

    state = _state(request)
    key_id = _key_id(request, state)
    body = await _body(request)
    parsed = _parse(convert.parse_anthropic, body)
    ctx = _context(state, request, key_id, parsed)
    adjusted = _guarded(state, ctx)
    upstream = convert.rewrite_anthropic(body, ctx.params, adjusted.params)
    resp = await state.call("POST", "/v1/messages", request, upstream)
    gens = state.stack.transform(adjusted, [convert.anthropic_generation(resp)])
    out = convert.apply_anthropic(resp, gens[0], _strips_reasoning(state.stack))
    if parsed.stream:
        return sse_response(_events(out, gens[0]))
    return JSONResponse(out)


async def _models(request: Request) -> Response:
    state = _state(request)
    _key_id(request, state)
    path = "/models" if state.api == "openai" else "/v1/models"
    return JSONResponse(await state.call("GET", path, request))


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
    stack = stack if stack is not None else DefenseStack()
    sampling = stack.sampling_defenses()
    if sampling:
        raise ValueError(
            f"{', '.join(sampling)}: sampling-time defense (it shifts the model's logits), "
            "which a proxy cannot apply to a remote model; remove it from the profile or "
            "serve a reference model with `extractbench serve --profile`")

    def to_stderr(line: str) -> None:
        print(f"extractbench proxy: {line}", file=sys.stderr, flush=True)

    app = FastAPI(title="extractbench defense proxy", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.extractbench_proxy = ProxyState(upstream_base_url, api, upstream_key, stack,
                                              keys, timeout_s, log or to_stderr)
    install_error_handlers(app)
    app.include_router(openai_router if api == "openai" else anthropic_router)
    app.add_api_route("/v1/models", _models, methods=["GET"])
    return app
