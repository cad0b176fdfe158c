"""Reading a JSON request body into a pydantic request model; bad input is a 400."""

from __future__ import annotations

from typing import TypeVar

import pydantic
from fastapi import Request

from extractbench.serving.errors import ApiError

M = TypeVar("M", bound=pydantic.BaseModel)


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"{}")
    except pydantic.ValidationError as exc:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            raise ApiError(400, "The request body is not valid JSON.") from None
        raise ApiError.from_validation(exc) from None
