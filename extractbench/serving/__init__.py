"""The embedded reference endpoint: an HTTP server that the official OpenAI and Anthropic
SDKs talk to unchanged, serving small local models behind a defense stack; and the defense
proxy, the same stack in front of a remote endpoint. Both run the one
:class:`~extractbench.serving.pipeline.Pipeline` (get an app's with :func:`pipeline_of`).

    from extractbench.serving import RunningServer, ServedModel, create_app

    app = create_app({"teacher": ServedModel("teacher", model)}, {"sk-a-0": "attacker-0"})
    with RunningServer(app) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-a-0")

Both run behind :class:`ServerLimits` (body size, header and body deadlines, requests in
flight, connections; ``RunningServer(app, limits=...)``), and the reference app refuses prompts
its model would not read whole with the vendor's context-length error.

``ServedModel``, ``ServedGeneration`` and ``stop_sequence_of`` (which import torch) load on
first use, so the proxy path stays torch-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from extractbench.serving.app import create_app
from extractbench.serving.errors import ApiError
from extractbench.serving.limits import ServerLimits
from extractbench.serving.pipeline import Pipeline, pipeline_of
from extractbench.serving.proxy import ProxyState, create_proxy_app
from extractbench.serving.running import RunningServer, serve_forever

if TYPE_CHECKING:
    from extractbench.reference.served import ServedGeneration, ServedModel, stop_sequence_of

__all__ = [
    "ApiError",
    "Pipeline",
    "ProxyState",
    "RunningServer",
    "ServedGeneration",
    "ServedModel",
    "ServerLimits",
    "create_app",
    "create_proxy_app",
    "pipeline_of",
    "serve_forever",
    "stop_sequence_of",
]

_LAZY = {"ServedGeneration", "ServedModel", "stop_sequence_of"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from extractbench.reference import served

        return getattr(served, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
