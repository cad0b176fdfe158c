"""The embedded reference endpoint: an HTTP server that the official OpenAI and Anthropic
SDKs talk to unchanged, serving small local models behind a defense stack.

    from extractbench.serving import RunningServer, ServedModel, create_app

    app = create_app({"teacher": ServedModel("teacher", model)}, {"sk-a-0": "attacker-0"})
    with RunningServer(app) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-a-0")
"""

from extractbench.reference.served import ServedGeneration, ServedModel, stop_sequence_of
from extractbench.serving.app import create_app
from extractbench.serving.errors import ApiError
from extractbench.serving.proxy import ProxyState, create_proxy_app
from extractbench.serving.running import RunningServer, serve_forever

__all__ = [
    "ApiError",
    "ProxyState",
    "RunningServer",
    "ServedGeneration",
    "ServedModel",
    "create_app",
    "create_proxy_app",
    "serve_forever",
    "stop_sequence_of",
]
