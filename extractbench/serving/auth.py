"""API-key authentication: ``Authorization: Bearer KEY`` or ``x-api-key: KEY``."""

from __future__ import annotations

from fastapi import Request

from extractbench.serving.errors import ApiError
from extractbench.serving.state import ServerState


def presented_key(request: Request) -> str | None:
    """The key a request carries, from either header (``x-api-key`` wins)."""
    key = request.headers.get("x-api-key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def require_key(request: Request) -> str:
    """FastAPI dependency: the key id of a known key, else a 401 (the key is never echoed)."""
    state: ServerState = request.app.state.extractbench
    key = presented_key(request)
    if key is None:
        raise ApiError(401, "Missing API key: send `Authorization: Bearer KEY` or `x-api-key`.")
    key_id = state.keys.get(key)
    if key_id is None:
        raise ApiError(401, "Incorrect API key provided.")
    return key_id
