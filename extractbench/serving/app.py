"""The reference endpoint's FastAPI application: served models behind the shared pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from extractbench.defenses import DefenseStack
from extractbench.serving import anthropic_api, models_api, openai_api
from extractbench.serving.catalog import Catalog
from extractbench.serving.errors import install_error_handlers
from extractbench.serving.pipeline import Pipeline, attach

if TYPE_CHECKING:
    from extractbench.reference.served import ServedModel


def create_app(
    models: dict[str, ServedModel],
    keys: dict[str, str],
    stack: DefenseStack | None = None,
    *,
    sim_clock: bool = False,
) -> FastAPI:
    """An app serving ``models`` (public name -> model) to ``keys`` (API key -> key id),
    behind ``stack`` (``None`` or empty: the undefended profile). With ``sim_clock`` its
    defenses run on the clients' simulated clock (:mod:`extractbench.serving.pipeline`)."""
    if not models:
        raise ValueError("create_app: serve at least one model")
    app = FastAPI(
        title="extractbench reference endpoint", docs_url=None, redoc_url=None, openapi_url=None
    )
    pipeline = Pipeline(stack, keys, sim_clock=sim_clock)
    attach(app, pipeline)
    app.state.extractbench_catalog = Catalog(models)
    # Deprecated: the runner reads .stack / .reset() here until it uses pipeline_of(app).
    app.state.extractbench = pipeline
    install_error_handlers(app)
    app.include_router(models_api.router)
    app.include_router(openai_api.router)
    app.include_router(anthropic_api.router)
    return app
