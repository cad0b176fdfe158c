"""The reference app's ``GET /v1/models`` and ``GET /v1/models/{id}``, in the OpenAI shape,
or the Anthropic shape when the request carries the ``anthropic-version`` header."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from extractbench.serving.auth import require_key
from extractbench.serving.catalog import catalog_of
from extractbench.serving.errors import family_of

router = APIRouter()


def _describe(name: str, created: float, anthropic: bool) -> dict[str, Any]:
    if anthropic:
        return {
            "type": "model",
            "id": name,
            "display_name": name,
            "created_at": datetime.fromtimestamp(created, UTC).isoformat(),
            "lifecycle": "active",
        }
    return {"id": name, "object": "model", "created": int(created), "owned_by": "extractbench"}


@router.get("/v1/models")
async def list_models(request: Request, key_id: str = Depends(require_key)) -> JSONResponse:
    catalog = catalog_of(request.app)
    anthropic = family_of(request) == "anthropic"
    data = [_describe(name, catalog.started, anthropic) for name in sorted(catalog.models)]
    if anthropic:
        return JSONResponse({
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        })
    return JSONResponse({"object": "list", "data": data})


@router.get("/v1/models/{model_id}")
async def get_model(
    model_id: str, request: Request, key_id: str = Depends(require_key)
) -> JSONResponse:
    catalog = catalog_of(request.app)
    served = catalog.model(model_id)
    return JSONResponse(
        _describe(served.name, catalog.started, family_of(request) == "anthropic")
    )
