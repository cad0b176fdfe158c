"""A scriptable fake vendor endpoint: a small FastAPI app speaking the OpenAI Chat Completions
and Anthropic Messages shapes, served by uvicorn on 127.0.0.1 in a background thread, like
httpx's ``MockTransport`` but over a real socket, so the real SDK clients talk to it.

Tell it what to do next with ``script``:
``"ok"``, ``"nousage"``, ``"refuse"``, ``"429:<s>"`` (retry-after seconds), ``"429ms:<ms>"``
(retry-after-ms), ``"429"`` (no header), ``"quota"``, ``"500"``, ``"404"``, ``"403"``,
``"sleep:<s>"`` (answer late; OpenAI route only).
Unknown keys always get a 401 that echoes the key, as some vendors do.

    with serve_fake() as fake:
        fake.script = ["429:0.1", "ok"]
        client = openai.OpenAI(base_url=fake.openai_url, api_key=GOOD_KEY)
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

__all__ = ["BAD_KEY", "GOOD_KEY", "OTHER_KEY", "FakeEndpoint", "closed_port_url", "serve_fake"]

GOOD_KEY = "eb-test-GOODkey-0123456789abcdef"
OTHER_KEY = "eb-test-OTHERkey-fedcba9876543210"
BAD_KEY = "eb-test-BADkey-00000000deadbeef"


_MALFORMED = Response(b'{"id": "cut-1", "choices": [{"index": 0, "mess', status_code=200,
                      media_type="application/json")
"""A 200 whose JSON body is cut short (what a proxy or a crashed worker can deliver)."""


class FakeEndpoint:
    def __init__(self) -> None:
        self.valid_keys = {GOOD_KEY, OTHER_KEY}
        self.script: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.url = ""
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self._openai)
        self.app.post("/v1/messages")(self._anthropic)

    def reset(self) -> None:
        with self.lock:
            self.script = []
            self.requests = []
            self.valid_keys = {GOOD_KEY, OTHER_KEY}

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    def keys_seen(self) -> list[str]:
        return [r["key"] for r in self.requests]

    def _next(self, path: str, request: Request, body: dict[str, Any]) -> tuple[str, str]:
        auth = request.headers.get("authorization", "")
        key = request.headers.get("x-api-key") or auth.removeprefix("Bearer ")
        with self.lock:
            self.requests.append({"path": path, "key": key, "body": body})
            if key not in self.valid_keys:
                return "401", key
            return (self.script.pop(0) if self.script else "ok"), key

    def _error(self, action: str, key: str, anthropic: bool) -> JSONResponse | None:
        status, _, arg = action.partition(":")
        headers: dict[str, str] = {}
        code = None
        if status == "401":
            message = f"Incorrect API key provided: {key}. Find your key at example.com."
        elif status == "429ms":
            status, message = "429", "slow down"
            headers["retry-after-ms"] = arg
        elif status == "quota":
            status, message, code = "429", "You exceeded your current quota", "insufficient_quota"
        elif status in ("429", "500", "404", "403"):
            message = f"fake {status}"
            if arg:
                headers["retry-after"] = arg
        else:
            return None
        if anthropic:
            content: dict[str, Any] = {
                "type": "error",
                "error": {"type": "api_error", "message": message},
            }
        else:
            content = {"error": {"message": message, "type": "error", "code": code}}
        return JSONResponse(content, status_code=int(status), headers=headers)

    async def _openai(self, request: Request) -> Response:
        body = await request.json()
        action, key = self._next("openai", request, body)
        if action.startswith("sleep:"):
            await asyncio.sleep(float(action.partition(":")[2]))
        error = self._error(action, key, anthropic=False)
        if error is not None:
            return error
        if action == "malformed":
            return _MALFORMED
        prompt = body["messages"][-1]["content"]
        text = f"answer to {prompt}"
        finish = "content_filter" if action == "refuse" else "stop"
        logprobs = None
        if body.get("logprobs"):
            n_top = body.get("top_logprobs") or 0
            logprobs = {
                "content": [
                    {
                        "token": tok,
                        "logprob": -0.5,
                        "bytes": None,
                        "top_logprobs": [
                            {"token": f"{tok}{j}", "logprob": -1.0 - j, "bytes": None}
                            for j in range(n_top)
                        ],
                    }
                    for tok in text.split()
                ]
            }
        out: dict[str, Any] = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                    "logprobs": logprobs,
                }
            ],
        }
        if action != "nousage":
            n_in, n_out = len(prompt.encode()), len(text.split())
            out["usage"] = {
                "prompt_tokens": n_in,
                "completion_tokens": n_out,
                "total_tokens": n_in + n_out,
            }
        return JSONResponse(out)

    async def _anthropic(self, request: Request) -> Response:
        body = await request.json()
        action, key = self._next("anthropic", request, body)
        error = self._error(action, key, anthropic=True)
        if error is not None:
            return error
        if action == "malformed":
            return _MALFORMED
        prompt = body["messages"][-1]["content"]
        text = f"answer to {prompt}"
        out: dict[str, Any] = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": "refusal" if action == "refuse" else "end_turn",
            "stop_sequence": None,
        }
        if action != "nousage":
            out["usage"] = {"input_tokens": len(prompt.encode()), "output_tokens": 3}
        return JSONResponse(out)


@contextmanager
def serve_fake() -> Iterator[FakeEndpoint]:
    """Run a :class:`FakeEndpoint` on 127.0.0.1 (a free port) for the duration."""
    fake = FakeEndpoint()
    config = uvicorn.Config(fake.app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.01)
        assert server.started, "fake endpoint did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        fake.url = f"http://127.0.0.1:{port}"
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
