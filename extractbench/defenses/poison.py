"""Wrong-but-plausible answers, shared by ``perturb`` and ``misinformation``.

A poisoned answer differs from the true one by a single character of its final answer (after
any reasoning block): one digit of the last number changes (never to a leading zero), or,
with no digit, two adjacent letters of the last word swap. The text keeps its byte length, so
the token logprobs can be patched to spell it: the changed token's string and bytes follow the
new text and, in its top alternatives, the old and new tokens swap places — the response still
looks self-consistent.

The change is a function of ``(seed, prompt)``: asking the same question again gives the same
wrong answer, so repeating a query and voting does not undo it.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import replace

from extractbench.types import Generation, TokenLogprob, TopLogprob

_NUMBER = re.compile(r"\d+")
_WORD = re.compile(r"[^\W\d_]{2,}")


def prompt_rng(seed: int | str, prompt: str, salt: str = "") -> random.Random:
    """A random stream that depends only on ``seed``, ``salt`` and the prompt's text."""
    digest = hashlib.sha256(f"{seed}/{salt}/{prompt.strip()}".encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def _answer_start(text: str, close_tag: str) -> int:
    at = text.rfind(close_tag)
    return 0 if at < 0 else at + len(close_tag)


def poison_text(text: str, rng: random.Random, close_tag: str = "</reasoning>") -> str:
    """``text`` with its final answer changed by one character (unchanged when there is no
    digit and no word of two letters)."""
    start = _answer_start(text, close_tag)
    numbers = list(_NUMBER.finditer(text, start))
    if numbers:
        m = numbers[-1]
        pos = m.start() + rng.randrange(len(m.group()))
        leading = pos == m.start() and len(m.group()) > 1
        options = [d for d in "0123456789" if d != text[pos] and not (leading and d == "0")]
        return text[:pos] + rng.choice(options) + text[pos + 1 :]
    words = [w for w in _WORD.finditer(text, start) if len(set(w.group())) > 1]
    if not words:
        return text
    w = words[-1]
    spots = [i for i in range(w.start(), w.end() - 1) if text[i] != text[i + 1]]
    i = rng.choice(spots)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def poison(gen: Generation, rng: random.Random, close_tag: str = "</reasoning>") -> Generation:
    """``gen`` with a wrong final answer and logprobs patched to match (see module doc)."""
    text = poison_text(gen.text, rng, close_tag)
    if text == gen.text:
        return gen
    logprobs = gen.logprobs
    if logprobs is not None:
        logprobs = patch_logprobs(logprobs, gen.text.encode("utf-8"), text.encode("utf-8"))
    return replace(gen, text=text, logprobs=logprobs)


def patch_logprobs(lps: list[TokenLogprob], old: bytes, new: bytes) -> list[TokenLogprob] | None:
    """Token logprobs spelling ``new`` where they spelt ``old`` (same length); ``None`` when
    the tokens do not spell ``old`` (then nothing consistent can be said)."""
    if len(old) != len(new) or sum(len(lp.bytes) for lp in lps) > len(old):
        return None
    out: list[TokenLogprob] = []
    at = 0
    for lp in lps:
        span = slice(at, at + len(lp.bytes))
        at += len(lp.bytes)
        if bytes(lp.bytes) != old[span]:
            return None
        if old[span] == new[span]:
            out.append(lp)
            continue
        raw = list(new[span])
        token = bytes(raw).decode("latin-1") if len(raw) == 1 else new[span].decode(
            "utf-8", errors="replace")
        top = [_swap(t, lp.token, lp.bytes, token, raw) for t in lp.top]
        out.append(TokenLogprob(token, raw, lp.logprob, top))
    return out


def _swap(t: TopLogprob, old_tok: str, old_raw: list[int], new_tok: str,
          new_raw: list[int]) -> TopLogprob:
    if t.token == old_tok:
        return TopLogprob(new_tok, new_raw, t.logprob)
    if t.token == new_tok:
        return TopLogprob(old_tok, old_raw, t.logprob)
    return t
