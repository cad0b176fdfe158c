"""The proxy's upstream: one HTTP client per event loop, the proxy's own upstream key (never
shown), and upstream failures turned into clear :class:`ApiError` answers plus one line for the
operator per distinct problem (keys scrubbed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Literal

import httpx
from fastapi import Request

from extractbench.endpoints.clients import scrub
from extractbench.serving.errors import ApiError

JSON = dict[str, Any]
ProxyApi = Literal["openai", "anthropic"]
ANTHROPIC_VERSION = "2023-06-01"


class Upstream:
    """Where the proxy sends requests, and how."""

    def __init__(self, base_url: str, api: ProxyApi, upstream_key: str, timeout_s: float,
                 log: Callable[[str], None]) -> None:
        self.base = base_url.rstrip("/")
        self.api: ProxyApi = api
        self._upstream_key = upstream_key
        self.timeout_s = timeout_s
        self._log = log
        self._logged: set[str] = set()
        self._clients: dict[int, httpx.AsyncClient] = {}

    def __repr__(self) -> str:
        return f"Upstream({self.api} {self.base})"

    def warn(self, message: str) -> None:
        """One line for the operator, once per distinct message (keys scrubbed)."""
        line = scrub(message, [self._upstream_key])
        if line not in self._logged:
            self._logged.add(line)
            self._log(line)

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
