"""Server-sent events, and splitting a generation into stream pieces."""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator, Iterable

from fastapi.responses import StreamingResponse

from extractbench.types import Generation, TokenLogprob

Piece = tuple[str, list[TokenLogprob]]


def sse(data: object, event: str | None = None) -> str:
    """One server-sent event carrying ``data`` as JSON (or verbatim when a string)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


def sse_response(events: Iterable[str]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        for event in events:
            yield event

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
    )


def pieces(gen: Generation) -> list[Piece]:
    """The text of ``gen`` as stream pieces, each with the logprobs of its tokens.

    With logprobs that spell the text, one piece per token (a piece may be empty while a
    multi-byte character is incomplete); otherwise one piece per character, and any logprobs
    ride on the first piece.
    """
    lps = gen.logprobs
    if lps:
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        out: list[Piece] = [(dec.decode(bytes(lp.bytes)), [lp]) for lp in lps]
        tail = dec.decode(b"", final=True)
        if tail:
            out[-1] = (out[-1][0] + tail, out[-1][1])
        if "".join(text for text, _ in out) == gen.text:
            return out
    chars: list[Piece] = [(c, []) for c in gen.text]
    if lps:
        if chars:
            chars[0] = (chars[0][0], list(lps))
        else:
            chars = [("", list(lps))]
    return chars
