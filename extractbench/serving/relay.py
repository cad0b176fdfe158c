"""The proxy's relay between wire bodies and what defenses see: the body sent upstream
(the client's, with what the defenses adjusted, unstreamed), the upstream answer's generations,
and the answer sent back (the upstream's, with the transformed text and logprobs), for the
OpenAI chat and Anthropic messages shapes. Fields a defense does not touch pass through."""

from __future__ import annotations

from typing import Any

from extractbench.serving.wire_openai import chat_logprobs
from extractbench.types import Generation, SamplingParams, TokenLogprob, TopLogprob

JSON = dict[str, Any]


def rewrite_openai(body: JSON, old: SamplingParams, new: SamplingParams) -> JSON:
    """The body to send upstream: the client's, with what the defenses adjusted, unstreamed."""
    out = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    if new.temperature != old.temperature:
        out["temperature"] = new.temperature
    if new.top_p != old.top_p:
        out["top_p"] = new.top_p
    if new.logit_bias != old.logit_bias:
        if new.logit_bias:
            out["logit_bias"] = {str(k): v for k, v in new.logit_bias.items()}
        else:
            out.pop("logit_bias", None)
    if new.top_logprobs != old.top_logprobs:
        if new.top_logprobs is None:
            out.pop("logprobs", None)
            out.pop("top_logprobs", None)
        elif new.top_logprobs == 0:
            out["logprobs"] = True
            out.pop("top_logprobs", None)
        else:
            out["logprobs"] = True
            out["top_logprobs"] = new.top_logprobs
    if new.max_tokens != old.max_tokens:
        key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        out[key] = new.max_tokens
    return out


def rewrite_anthropic(body: JSON, old: SamplingParams, new: SamplingParams) -> JSON:
    out = {k: v for k, v in body.items() if k != "stream"}
    if new.temperature != old.temperature:
        out["temperature"] = min(1.0, new.temperature)  # the Messages API's maximum
    if new.top_p != old.top_p:
        out["top_p"] = new.top_p
    if new.max_tokens != old.max_tokens:
        out["max_tokens"] = new.max_tokens
    return out


def _token_logprobs(content: Any) -> list[TokenLogprob] | None:
    if not isinstance(content, list):
        return None
    out = []
    for t in content:
        token = str(t.get("token", ""))
        raw = t.get("bytes")
        raw = list(raw) if isinstance(raw, list) else list(token.encode("utf-8"))
        top = [
            TopLogprob(str(a.get("token", "")),
                       list(a["bytes"]) if isinstance(a.get("bytes"), list)
                       else list(str(a.get("token", "")).encode("utf-8")),
                       float(a.get("logprob", 0.0)))
            for a in t.get("top_logprobs") or [] if isinstance(a, dict)
        ]
        out.append(TokenLogprob(token, raw, float(t.get("logprob", 0.0)), top))
    return out


def openai_generations(resp: JSON) -> list[Generation]:
    """One generation per choice (usage goes on the first: the split is unknown)."""
    usage = resp.get("usage") or {}
    prompt_tokens = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    gens = []
    for i, choice in enumerate(resp.get("choices") or []):
        msg = choice.get("message") or {}
        lp = choice.get("logprobs")
        gens.append(Generation(
            text=str(msg.get("content") or ""),
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=prompt_tokens,
            completion_tokens=completion if i == 0 else 0,
            logprobs=_token_logprobs(lp.get("content")) if isinstance(lp, dict) else None,
        ))
    return gens


REASONING_FIELDS = ("reasoning_content", "reasoning", "reasoning_details")


def apply_openai(resp: JSON, gens: list[Generation], strip_reasoning: bool) -> JSON:
    """``resp`` with each choice's text and logprobs replaced by the transformed ones."""
    choices = []
    for choice, g in zip(resp.get("choices") or [], gens, strict=False):
        msg = dict(choice.get("message") or {})
        msg["content"] = g.text
        if strip_reasoning:
            for f in REASONING_FIELDS:
                msg.pop(f, None)
        c = dict(choice, message=msg)
        c["logprobs"] = None if g.logprobs is None else chat_logprobs(g.logprobs)
        choices.append(c)
    return dict(resp, choices=choices)


def anthropic_generation(resp: JSON) -> Generation:
    usage = resp.get("usage") or {}
    blocks = resp.get("content") or []
    text = "".join(str(b.get("text") or "") for b in blocks
                   if isinstance(b, dict) and b.get("type") == "text")
    return Generation(
        text=text,
        finish_reason="length" if resp.get("stop_reason") == "max_tokens" else "stop",
        prompt_tokens=int(usage.get("input_tokens") or 0),
        completion_tokens=int(usage.get("output_tokens") or 0),
    )


def apply_anthropic(resp: JSON, gen: Generation, strip_reasoning: bool) -> JSON:
    """``resp`` with its text blocks replaced by one block holding the transformed text
    (in place of the first), and thinking blocks dropped when ``strip_reasoning``."""
    out: list[Any] = []
    placed = False
    for b in resp.get("content") or []:
        kind = b.get("type") if isinstance(b, dict) else None
        if kind == "text":
            if not placed:
                out.append(dict(b, text=gen.text))
                placed = True
        elif strip_reasoning and kind in ("thinking", "redacted_thinking"):
            continue
        else:
            out.append(b)
    if not placed:
        out.append({"type": "text", "text": gen.text})
    return dict(resp, content=out)
