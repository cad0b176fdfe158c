"""Reading a JSON request body into a pydantic wire model; bad input is a 400.

``context`` reaches the wire models' validators (e.g. ``{"vocab_size": 260}`` bounds
``logit_bias`` keys by the served tokenizer's vocabulary).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pydantic
from fastapi import Request

from extractbench.serving.errors import ApiError

M = TypeVar("M", bound=pydantic.BaseModel)


def validate(raw: bytes, model: type[M], context: dict[str, Any] | None = None) -> M:
    try:
        return model.model_validate_json(raw or b"{}", context=context)
    except pydantic.ValidationError as exc:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            raise ApiError(400, "The request body is not valid JSON.") from None
        raise ApiError.from_validation(exc) from None


async def parse_body(request: Request, model: type[M],
                     context: dict[str, Any] | None = None) -> M:
    """The body as ``model``."""
    return validate(await request.body(), model, context)


async def parse_body_raw(request: Request, model: type[M],
                         context: dict[str, Any] | None = None) -> tuple[M, dict[str, Any]]:
    """The body as ``model`` (validated), and as the JSON object it is (to forward)."""
    raw = await request.body()
    parsed = validate(raw, model, context)
    try:
        data = json.loads(raw or b"{}")
    except ValueError:  # pragma: no cover - what pydantic read, json reads
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):  # pragma: no cover - the models only validate objects
        raise ApiError(400, "The request body must be a JSON object.")
    return parsed, data
