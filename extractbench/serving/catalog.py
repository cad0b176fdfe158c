"""The reference app's served models: lookup by public name (a 404 in the API's shape when
unknown), the listing timestamp, and the pipeline's generation step for a model.

Only the reference app uses it; torch comes in with the :class:`ServedModel` objects.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi import FastAPI

from extractbench.serving.errors import ApiError
from extractbench.serving.pipeline import Generate, Step
from extractbench.types import Generation

if TYPE_CHECKING:
    from extractbench.reference.served import ServedModel


class Catalog:
    """Public name -> served model."""

    def __init__(self, models: dict[str, ServedModel]) -> None:
        self.models = dict(models)
        self.started = time.time()

    def model(self, name: str) -> ServedModel:
        served = self.models.get(name)
        if served is None:
            raise ApiError(
                404,
                f"The model `{name}` does not exist (served: {', '.join(sorted(self.models))}).",
                param="model",
                code="model_not_found",
            )
        return served


def generation_step(served: ServedModel) -> Generate:
    """The pipeline's generation step on ``served``, with the defenses' processors."""

    def generate(step: Step) -> list[Generation]:
        ctx = step.ctx
        return served.generate(ctx.prompt, ctx.params, ctx.n, step.processors)

    return generate


def catalog_of(app: FastAPI) -> Catalog:
    catalog: Catalog = app.state.extractbench_catalog
    return catalog
