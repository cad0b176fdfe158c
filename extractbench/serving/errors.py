"""Errors as values with a status, rendered in each API family's own error shape.

OpenAI: ``{"error": {"message", "type", "param", "code"}}``.
Anthropic: ``{"type": "error", "error": {"type", "message"}}``.
Messages never contain API keys: nothing from the request headers is echoed.
"""

from __future__ import annotations

import math
from typing import Literal

import pydantic
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from extractbench.defenses import Rejection

Family = Literal["openai", "anthropic"]

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {403: "permission_error", 429: "requests"}
_OPENAI_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}


class ApiError(Exception):
    """An error response: HTTP status plus what each API shape needs."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.param = param
        self.code = code
        self.retry_after = retry_after

    @classmethod
    def from_rejection(cls, rejection: Rejection) -> ApiError:
        return cls(
            rejection.status,
            rejection.message,
            error_type=rejection.error_type,
            code=rejection.code,
            retry_after=rejection.retry_after,
        )

    @classmethod
    def from_validation(
        cls, exc: pydantic.ValidationError | RequestValidationError
    ) -> ApiError:
        """400 naming the first offending field (the input value is not echoed)."""
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        msg = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        return cls(400, f"{param}: {msg}" if param else msg, param=param)

    def body(self, family: Family) -> dict[str, object]:
        if family == "anthropic":
            etype = self.error_type or _ANTHROPIC_TYPES.get(
                self.status, "api_error" if self.status >= 500 else "invalid_request_error"
            )
            return {"type": "error", "error": {"type": etype, "message": self.message}}
        etype = _OPENAI_TYPES.get(self.status) or self.error_type or (
            "server_error" if self.status >= 500 else "invalid_request_error"
        )
        return {
            "error": {
                "message": self.message,
                "type": etype,
                "param": self.param,
                "code": self.code or _OPENAI_CODES.get(self.status),
            }
        }

    def response(self, family: Family) -> JSONResponse:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["retry-after"] = str(max(0, math.ceil(self.retry_after)))
            headers["retry-after-ms"] = str(max(0, round(self.retry_after * 1000)))
        return JSONResponse(self.body(family), status_code=self.status, headers=headers)


def family_of(request: Request) -> Family:
    """Which error shape a request expects: Anthropic for ``/v1/messages`` and for any
    request carrying the ``anthropic-version`` header (the Anthropic SDK always sends it)."""
    return family_of_scope(request.scope)


def family_of_scope(scope: Scope) -> Family:
    """:func:`family_of` for an ASGI scope (before there is a request object)."""
    path = str(scope.get("path", ""))
    if path.startswith("/v1/messages") or "anthropic-version" in Headers(scope=scope):
        return "anthropic"
    return "openai"


def install_error_handlers(app: FastAPI) -> None:
    """Render every error (ours, FastAPI's validation, routing) in the caller's API shape."""

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response(family_of(request))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return ApiError.from_validation(exc).response(family_of(request))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return ApiError(exc.status_code, str(exc.detail)).response(family_of(request))

    async def on_crash(request: Request, exc: Exception) -> Response:
        return ApiError(500, "The server had an error processing the request.").response(
            family_of(request)
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
