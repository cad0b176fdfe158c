"""Answer extraction shared by the task families: find the final answer in a response however
an endpoint formats it (a reasoning block first, markdown, "The answer is ...", a trailing full
stop), and normalise it for comparison."""

from __future__ import annotations

import re

REASONING_OPEN = "<reasoning>"
REASONING_CLOSE = "</reasoning>"

# Blocks of working that come before a final answer: ours, and the usual vendor/open-model tags.
_BLOCKS = re.compile(r"<(reasoning|thinking|think)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_OPEN = re.compile(r"<(reasoning|thinking|think)>", re.IGNORECASE)
_LEAD = re.compile(
    r"^(?:final answer|the answer is|answer|the result is|result|label|category|team|"
    r"ciphertext|encoded|output)\s*(?:is)?\s*[:=\-]?\s*",
    re.IGNORECASE,
)
_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_part(text: str) -> str | None:
    """The text after any reasoning block; ``None`` when a block is opened but never closed
    (the answer was cut off, and numbers inside the working must not count as the answer)."""
    rest = _BLOCKS.sub(" ", text)
    if _OPEN.search(rest):
        return None
    return rest


def clean(text: str) -> str:
    """Strip markdown emphasis, quotes, an "Answer:" lead and trailing punctuation; collapse
    whitespace. What a bare-answer comparison uses."""
    out = text.strip()
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    if lines:
        out = lines[-1]
    out = re.sub(r"[*_`]+", "", out).strip()
    out = _LEAD.sub("", out).strip()
    out = out.strip(" \t\"'“”‘’«»()[]")
    out = out.rstrip(".!;,:").strip()
    return " ".join(out.split())


def norm(text: str) -> str:
    """Case-folded :func:`clean` text: what exact-match scorers compare."""
    return clean(text).casefold()


def last_number(text: str) -> str | None:
    """The last number in ``text`` (thousands separators and a unicode minus handled)."""
    nums = _NUM.findall(text.replace("−", "-").replace("–", "-"))
    if not nums:
        return None
    return nums[-1].replace(",", "")


def last_label(text: str, labels: list[str]) -> str | None:
    """The label of ``labels`` mentioned last in ``text`` (whole words, any case); ``None``
    when none is. Longer labels win over labels they contain ("tech support" over "tech")."""
    low = text.casefold()
    spans: list[tuple[int, int, str]] = []
    for label in labels:
        pat = r"(?<![\w])" + re.escape(label.casefold()) + r"(?![\w])"
        spans.extend((m.start(), m.end(), label) for m in re.finditer(pat, low))
    inside = {s for s in spans for o in spans
              if o != s and o[0] <= s[0] and s[1] <= o[1] and o[1] - o[0] > s[1] - s[0]}
    kept = [s for s in spans if s not in inside]
    return max(kept)[2] if kept else None
