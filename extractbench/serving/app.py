"""The reference endpoint's FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from extractbench.defenses import DefenseStack
from extractbench.reference.served import ServedModel
from extractbench.serving import anthropic_api, models_api, openai_api
from extractbench.serving.errors import install_error_handlers
from extractbench.serving.state import ServerState


def create_app(
    models: dict[str, ServedModel],
    keys: dict[str, str],
    stack: DefenseStack | None = None,
) -> FastAPI:
    """An app serving ``models`` (public name -> model) to ``keys`` (API key -> key id),
    behind ``stack`` (``None`` or empty: the undefended profile)."""
    if not models:
        raise ValueError("create_app: serve at least one model")
    app = FastAPI(
        title="extractbench reference endpoint", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.extractbench = ServerState(
        models=dict(models), keys=dict(keys), stack=stack if stack is not None else DefenseStack()
    )
    install_error_handlers(app)
    app.include_router(models_api.router)
    app.include_router(openai_api.router)
    app.include_router(anthropic_api.router)
    return app
