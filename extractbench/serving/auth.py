"""API-key authentication: ``Authorization: Bearer KEY`` or ``x-api-key: KEY``."""

from __future__ import annotations

from fastapi import Request

from extractbench.serving.pipeline import pipeline_of


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
    """The key id of a known key, else a 401 (the key is never echoed); also a FastAPI
    dependency."""
    return pipeline_of(request.app).key_id(presented_key(request))
