"""Endpoint clients: one request to an OpenAI-compatible or Anthropic endpoint through the
official SDK, with SDK errors mapped to one typed :class:`EndpointError`.

The SDKs are imported lazily (only the one an endpoint uses) and run with ``max_retries=0``:
retries, backoff and budget charging belong to the :class:`~extractbench.campaign.oracle.Oracle`.
API keys never appear in an error message: every message is scrubbed of the key in use.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from extractbench.errors import ExtractbenchError
from extractbench.logs.harvest import ErrorType, TokenLogprob, TopLogprob

__all__ = [
    "SIM_TIME_HEADER",
    "AnthropicMessagesClient",
    "ApiKind",
    "Completion",
    "Endpoint",
    "EndpointClient",
    "EndpointError",
    "OpenAIChatClient",
    "QueryRequest",
    "make_client",
    "scrub",
]

ApiKind = Literal["openai", "anthropic"]


class Endpoint(BaseModel):
    """Where queries go. ``base_url`` is what the SDK expects: for ``openai`` it includes the
    ``/v1`` prefix (``http://127.0.0.1:8000/v1``); for ``anthropic`` it is the server root
    (``http://127.0.0.1:8000``), since that SDK adds ``/v1/messages`` itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api: ApiKind
    base_url: str
    model: str
    timeout_s: float = Field(default=60.0, gt=0, description="per request")
    sampling_params: bool = Field(
        default=True,
        description="send temperature/top_p/seed; turn off for vendor models that reject them",
    )
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = Field(
        default="max_tokens", description="openai only: the name the endpoint accepts"
    )
    stream: bool = Field(
        default=False,
        description="ask for server-sent events and assemble the answer from them (openai: "
        "with stream_options.include_usage, so usage is still reported)",
    )


@dataclass(frozen=True)
class QueryRequest:
    """One single-turn chat request."""

    prompt: str
    max_tokens: int
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    stop: list[str] | None = None
    logit_bias: dict[int, float] | None = None
    """Token id -> bias added to its logit (OpenAI-compatible endpoints; the Messages API has
    none, and the Anthropic client sends none)."""
    model: str | None = None
    """The model to ask instead of the endpoint's (a benign user who also asks about another
    task); ``None``: the endpoint's ``model``."""
    sim_time: float | None = None
    """Simulated seconds since the campaign began, sent as the ``x-extractbench-sim-time``
    header: a reference endpoint on a simulated clock (:mod:`extractbench.campaign.simclock`)
    runs its defenses at this time; any other endpoint ignores the header."""


SIM_TIME_HEADER = "x-extractbench-sim-time"


def _sim_headers(req: QueryRequest) -> dict[str, str]:
    return {} if req.sim_time is None else {SIM_TIME_HEADER: f"{req.sim_time:.6f}"}


@dataclass(frozen=True)
class Completion:
    """What the endpoint answered. Token counts are ``None`` when it reported no usage."""

    text: str
    finish_reason: str | None
    logprobs: list[TokenLogprob] | None
    input_tokens: int | None
    output_tokens: int | None


class EndpointError(ExtractbenchError):
    """A request that failed, typed. ``status`` is the HTTP status when there was a response;
    ``retry_after`` is the wait in seconds the endpoint asked for, if any. ``maybe_served``
    (connection and timeout errors): the request left this machine and no status came back, so
    the endpoint may have served and billed it (a reset or a stall after the request was
    written); ``False`` when the connection was never made (refused, connect timeout)."""

    def __init__(
        self,
        error_type: ErrorType,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        maybe_served: bool = False,
    ) -> None:
        super().__init__(message)
        self.error_type: ErrorType = error_type
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.maybe_served = maybe_served

    def __str__(self) -> str:
        status = f" {self.status}" if self.status is not None else ""
        return f"{self.error_type}{status}: {self.message}"


class EndpointClient(Protocol):
    """Sends one request with a given key. Implementations keep one SDK client per key."""

    endpoint: Endpoint

    async def complete(self, req: QueryRequest, api_key: str) -> Completion:
        """The endpoint's answer, or :class:`EndpointError`."""
        ...

    async def aclose(self) -> None: ...


def make_client(endpoint: Endpoint) -> EndpointClient:
    if endpoint.api == "openai":
        return OpenAIChatClient(endpoint)
    return AnthropicMessagesClient(endpoint)


_MIN_FRAGMENT = 8  # a key fragment this long in a message is treated as the key
_WORD = re.compile(r"[^\s\"'`,;:()<>\[\]{}]{%d,}" % _MIN_FRAGMENT)  # noqa: UP031 (regex braces)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret, and every word sharing an 8-character run with one (vendors
    echo keys partly masked: ``sk-abc1****wxyz``), replaced by ``[redacted]``."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "[redacted]")
        if len(secret) >= _MIN_FRAGMENT:

            def redact(m: re.Match[str], secret: str = secret) -> str:
                return _redact_word(m.group(0), secret)

            text = _WORD.sub(redact, text)
    return text


def _redact_word(word: str, secret: str) -> str:
    n = _MIN_FRAGMENT
    grams = {secret[i : i + n] for i in range(len(secret) - n + 1)}
    return "[redacted]" if any(word[i : i + n] in grams for i in range(len(word) - n + 1)) else word


class _SdkClient:
    """Shared parts: one SDK client per key, error mapping, closing."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._sdk_clients: dict[str, Any] = {}

    async def aclose(self) -> None:
        clients, self._sdk_clients = list(self._sdk_clients.values()), {}
        for client in clients:
            await client.close()

    def _sdk(self, api_key: str) -> Any:
        client = self._sdk_clients.get(api_key)
        if client is None:
            client = self._sdk_clients[api_key] = self._new_sdk(api_key)
        return client

    def _new_sdk(self, api_key: str) -> Any:
        raise NotImplementedError

    def _error(self, exc: Exception, api_key: str) -> EndpointError:
        status: int | None = getattr(exc, "status_code", None)
        response = getattr(exc, "response", None)
        message = scrub(_message(exc), [api_key])
        if status is None or not isinstance(status, int):
            kind = type(exc).__name__
            if "Timeout" in kind:
                return EndpointError("timeout", message, maybe_served=not _never_connected(exc))
            if _cut_short(exc):
                return EndpointError("invalid_response", f"response cut short ({message})",
                                     status=200)
            if "Connection" in kind:
                return EndpointError("connection", message,
                                     maybe_served=not _never_connected(exc))
            return EndpointError("invalid_response", f"{kind}: {message}")
        if status < 400:
            return EndpointError("invalid_response", message, status=status)
        error_type = _status_type(status, exc)
        return EndpointError(
            error_type, message, status=status, retry_after=_retry_after(response)
        )


class OpenAIChatClient(_SdkClient):
    """``POST {base_url}/chat/completions`` with the ``openai`` SDK."""

    def _new_sdk(self, api_key: str) -> Any:
        import openai

        return openai.AsyncOpenAI(
            base_url=self.endpoint.base_url,
            api_key=api_key,
            max_retries=0,
            timeout=self.endpoint.timeout_s,
        )

    async def complete(self, req: QueryRequest, api_key: str) -> Completion:
        import openai

        ep = self.endpoint
        kwargs: dict[str, Any] = {
            "model": req.model or ep.model,
            "messages": [{"role": "user", "content": req.prompt}],
            ep.max_tokens_param: req.max_tokens,
        }
        if ep.sampling_params:
            kwargs["temperature"] = req.temperature
            if req.top_p is not None:
                kwargs["top_p"] = req.top_p
            if req.seed is not None:
                kwargs["seed"] = req.seed
        if req.stop:
            kwargs["stop"] = req.stop
        if req.logprobs or req.top_logprobs:
            kwargs["logprobs"] = True
            if req.top_logprobs:
                kwargs["top_logprobs"] = req.top_logprobs
        if req.logit_bias:
            kwargs["logit_bias"] = {str(k): v for k, v in req.logit_bias.items()}
        if ep.stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        if req.sim_time is not None:
            kwargs["extra_headers"] = _sim_headers(req)
        try:
            resp = await self._sdk(api_key).chat.completions.create(**kwargs)
            if ep.stream:
                return await _openai_stream(resp)
        except openai.OpenAIError as e:
            raise self._error(e, api_key) from None
        except ValueError as e:  # a 200 whose body is not JSON (the SDK's json.JSONDecodeError)
            raise _malformed(e) from None
        except _STREAM_ERRORS as e:
            raise _broken_stream(e, api_key) from None
        try:
            choice = resp.choices[0]
            usage = getattr(resp, "usage", None)
            return Completion(
                text=choice.message.content or "",
                finish_reason=_refusal(choice.message, choice.finish_reason),
                logprobs=_openai_logprobs(getattr(choice, "logprobs", None)),
                input_tokens=getattr(usage, "prompt_tokens", None),
                output_tokens=getattr(usage, "completion_tokens", None),
            )
        except (AttributeError, IndexError, TypeError) as e:
            raise EndpointError(
                "invalid_response", f"unreadable chat completion: {type(e).__name__}"
            ) from None


class AnthropicMessagesClient(_SdkClient):
    """``POST {base_url}/v1/messages`` with the ``anthropic`` SDK. No logprobs; the SDK has no
    sampling arguments, so temperature/top_p go in the request body."""

    def _new_sdk(self, api_key: str) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(
            base_url=self.endpoint.base_url,
            api_key=api_key,
            max_retries=0,
            timeout=self.endpoint.timeout_s,
        )

    async def complete(self, req: QueryRequest, api_key: str) -> Completion:
        import anthropic

        ep = self.endpoint
        kwargs: dict[str, Any] = {
            "model": req.model or ep.model,
            "max_tokens": req.max_tokens,
            "messages": [{"role": "user", "content": req.prompt}],
        }
        if req.stop:
            kwargs["stop_sequences"] = req.stop
        if ep.sampling_params:
            body: dict[str, Any] = {"temperature": req.temperature}
            if req.top_p is not None:
                body["top_p"] = req.top_p
            kwargs["extra_body"] = body
        if req.sim_time is not None:
            kwargs["extra_headers"] = _sim_headers(req)
        try:
            if ep.stream:
                stream = await self._sdk(api_key).messages.create(**kwargs, stream=True)
                return await _anthropic_stream(stream)
            msg = await self._sdk(api_key).messages.create(**kwargs)
        except anthropic.AnthropicError as e:
            raise self._error(e, api_key) from None
        except ValueError as e:  # a 200 whose body is not JSON (the SDK's json.JSONDecodeError)
            raise _malformed(e) from None
        except _STREAM_ERRORS as e:
            raise _broken_stream(e, api_key) from None
        try:
            text = "".join(
                block.text for block in msg.content if getattr(block, "type", None) == "text"
            )
            usage = getattr(msg, "usage", None)
            input_tokens: int | None = getattr(usage, "input_tokens", None)
            if input_tokens is not None:
                for extra in ("cache_creation_input_tokens", "cache_read_input_tokens"):
                    input_tokens += getattr(usage, extra, None) or 0
            return Completion(
                text=text,
                finish_reason=getattr(msg, "stop_reason", None),
                logprobs=None,
                input_tokens=input_tokens,
                output_tokens=getattr(usage, "output_tokens", None),
            )
        except (AttributeError, TypeError) as e:
            raise EndpointError(
                "invalid_response", f"unreadable message: {type(e).__name__}"
            ) from None


def _http_errors() -> tuple[type[BaseException], ...]:
    """The HTTP libraries' error bases (``httpx``, and ``httpx2``, which newer SDKs use)."""
    found: list[type[BaseException]] = []
    for name in ("httpx", "httpx2"):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(importlib.import_module(name).HTTPError)
    return tuple(found)


_STREAM_ERRORS: tuple[type[BaseException], ...] = (*_http_errors(), AttributeError, TypeError,
                                                    IndexError)
"""What reading an open stream can raise: the HTTP library's errors (the SDKs do not wrap
them once the stream is open), or a malformed event."""

_CUT_BODY = ("complete message body", "incomplete chunked read")
"""How the HTTP library says a response stopped after its headers (h11's wording)."""


def _cut_short(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) says the response's headers arrived and its body was
    cut: the endpoint served the request."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if any(m in str(seen) for m in _CUT_BODY):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _never_connected(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) is httpx's failure to open the connection
    (``ConnectError``, ``ConnectTimeout``): no byte of the request was sent."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if type(seen).__name__ in ("ConnectError", "ConnectTimeout"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _broken_stream(exc: BaseException, api_key: str) -> EndpointError:
    """A stream that started (the endpoint served the request) and then broke: charged and
    retried, like a malformed body; a read timeout stays a timeout."""
    message = scrub(f"{type(exc).__name__}: {exc}", [api_key])[:200]
    if "Timeout" in type(exc).__name__:
        return EndpointError("timeout", f"stream stalled ({message})", status=200,
                             maybe_served=True)
    return EndpointError("invalid_response", f"stream cut short ({message})", status=200)


async def _openai_stream(stream: Any) -> Completion:
    """Assemble a chat completion from its chunks; a stream without a finish reason was cut."""
    text: list[str] = []
    logprobs: list[TokenLogprob] = []
    finish: str | None = None
    refusal = False
    usage = None
    async for chunk in stream:
        if getattr(chunk, "usage", None) is not None:
            usage = chunk.usage
        for choice in chunk.choices or []:
            delta = choice.delta
            if delta is not None:
                text.append(getattr(delta, "content", None) or "")
                refusal = refusal or bool(getattr(delta, "refusal", None))
            lp = _openai_logprobs(getattr(choice, "logprobs", None))
            if lp:
                logprobs.extend(lp)
            finish = choice.finish_reason or finish
    if finish is None:
        raise EndpointError("invalid_response", "stream ended without a finish_reason",
                            status=200)
    body = "".join(text)
    return Completion(
        text=body,
        finish_reason="refusal" if refusal and not body else finish,
        logprobs=logprobs or None,
        input_tokens=getattr(usage, "prompt_tokens", None),
        output_tokens=getattr(usage, "completion_tokens", None),
    )


async def _anthropic_stream(stream: Any) -> Completion:
    """Assemble a message from its events; a stream without ``message_stop`` was cut."""
    text: list[str] = []
    stop_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    stopped = False
    async for event in stream:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            usage = getattr(event.message, "usage", None)
            input_tokens = getattr(usage, "input_tokens", None)
            if input_tokens is not None:
                for extra in ("cache_creation_input_tokens", "cache_read_input_tokens"):
                    input_tokens += getattr(usage, extra, None) or 0
            output_tokens = getattr(usage, "output_tokens", None)
        elif kind == "content_block_delta" and getattr(event.delta, "type", None) == "text_delta":
            text.append(event.delta.text)
        elif kind == "message_delta":
            stop_reason = getattr(event.delta, "stop_reason", None) or stop_reason
            out = getattr(getattr(event, "usage", None), "output_tokens", None)
            output_tokens = out if out is not None else output_tokens
        elif kind == "message_stop":
            stopped = True
    if not stopped:
        raise EndpointError("invalid_response", "stream ended without message_stop", status=200)
    return Completion(text="".join(text), finish_reason=stop_reason, logprobs=None,
                      input_tokens=input_tokens, output_tokens=output_tokens)


def _malformed(exc: ValueError) -> EndpointError:
    """The endpoint answered 200 but its body could not be parsed: it served (and bills) the
    request, so the attempt is charged; the oracle retries it."""
    return EndpointError("invalid_response",
                         f"malformed response body ({type(exc).__name__}: {str(exc)[:80]})",
                         status=200)


def _openai_logprobs(lp: Any) -> list[TokenLogprob] | None:
    content = getattr(lp, "content", None)
    if not content:
        return None
    return [
        TokenLogprob(
            token=t.token,
            logprob=t.logprob,
            top=[TopLogprob(token=a.token, logprob=a.logprob) for a in (t.top_logprobs or [])],
        )
        for t in content
    ]


def _refusal(message: Any, finish_reason: str | None) -> str | None:
    """OpenAI reports refusals either as ``content_filter`` or in ``message.refusal``."""
    if getattr(message, "refusal", None) and not getattr(message, "content", None):
        return "refusal"
    return finish_reason


def _status_type(status: int, exc: Exception) -> ErrorType:
    if status == 401:
        return "auth"
    if status == 402:
        return "quota"
    if status == 403:
        return "permission"
    if status == 404:
        return "not_found"
    if status == 408:
        return "timeout"
    if status == 429:
        code = getattr(exc, "code", None) or _body_field(exc, "code")
        return "quota" if code == "insufficient_quota" else "rate_limit"
    if status == 409 or status >= 500:
        return "server"
    return "bad_request"


def _body_field(exc: Exception, name: str) -> object:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner.get(name)
    return None


def _message(exc: Exception) -> str:
    body_message = _body_field(exc, "message")
    if isinstance(body_message, str) and body_message:
        return body_message
    return str(getattr(exc, "message", None) or exc)


def _retry_after(response: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds; HTTP dates are ignored)."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None
