"""The reference app's context-length rules: a prompt the served model would not read whole is
refused with the vendor's own error, before the pipeline counts it as a query.

OpenAI (``code: context_length_exceeded``)::

    This model's maximum context length is 96 tokens. However, your messages resulted in
    120 tokens. Please reduce the length of the messages.

Anthropic (``invalid_request_error``)::

    prompt is too long: 120 tokens > 96 maximum

With ``strict_context`` a prompt plus ``max_tokens`` over the model's context is refused too
(as OpenAI and Claude 3.7+ do; a chat request without ``max_tokens`` gets the room left);
without, ``max_tokens`` is cut to the room left (as Claude before 3.7 did). What the limits
are is the :class:`~extractbench.reference.served.ServedModel`'s business.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from extractbench.serving.errors import ApiError

if TYPE_CHECKING:
    from extractbench.reference.served import ServedModel

__all__ = ["Route", "check_prompt", "completion_limit"]

Route = Literal["chat", "completions", "messages"]
"""``/v1/chat/completions``, ``/v1/completions``, ``/v1/messages`` (and its count_tokens)."""

_PARAM: dict[Route, str] = {"chat": "messages", "completions": "prompt", "messages": "messages"}


def _too_long(route: Route, limit: int, prompt: int, completion: int | None) -> ApiError:
    if route == "messages":
        if completion is None:
            return ApiError(400, f"prompt is too long: {prompt} tokens > {limit} maximum")
        return ApiError(400, f"input length and `max_tokens` exceed context limit: {prompt} + "
                        f"{completion} > {limit}, decrease input length or `max_tokens` and "
                        "try again")
    if route == "completions":
        asked = prompt + (completion or 0)
        msg = (f"This model's maximum context length is {limit} tokens, however you requested "
               f"{asked} tokens ({prompt} in your prompt; {completion or 0} for the "
               "completion). Please reduce your prompt; or completion length.")
    elif completion is None:
        msg = (f"This model's maximum context length is {limit} tokens. However, your messages "
               f"resulted in {prompt} tokens. Please reduce the length of the messages.")
    else:
        msg = (f"This model's maximum context length is {limit} tokens. However, you requested "
               f"{prompt + completion} tokens ({prompt} in the messages, {completion} in the "
               "completion). Please reduce the length of the messages or completion.")
    return ApiError(400, msg, param=_PARAM[route], code="context_length_exceeded")


def check_prompt(served: ServedModel, prompt: str, route: Route,
                 max_tokens: int | None = None) -> int:
    """The prompt's tokens, or the vendor's 400 when it is longer than ``served`` accepts
    (``max_tokens``: what the legacy completions message quotes)."""
    tokens = served.input_tokens(prompt)
    if tokens > served.max_prompt_tokens:
        completion = max_tokens if route == "completions" else None
        raise _too_long(route, served.max_prompt_tokens, tokens, completion)
    return tokens


def completion_limit(served: ServedModel, prompt_tokens: int, asked: int | None,
                     route: Route) -> int:
    """The most ``max_tokens`` may be for a prompt of ``prompt_tokens`` (what the wire
    models' ``params(limit)`` take); strict: the vendor's 400 when ``asked`` does not fit."""
    if not served.strict_context:
        return served.max_tokens
    room = served.context_tokens - prompt_tokens
    if (asked is not None and asked > room) or room < 1:
        raise _too_long(route, served.context_tokens, prompt_tokens, asked or 1)
    return room
