"""Wording that does not change what a prompt asks: what content keys look through.

:func:`normalise` reduces a prompt to the words that carry its question, so two wordings of one
question compare equal. It removes, in this order:

- a trailing reasoning request (the task's own suffix, and any sentence starting "Show your
  working");
- greetings and lead-ins ("Hi!", "Quick question:", "Please help:", "I was wondering:") and a
  closing thank-you;
- answer-format instructions (a sentence that starts "Answer/Give ... only", "Answer with",
  "Answer in", "Answer briefly", and a clause "... and answer with the town only"; "Reply"
  and "Respond" read as "Answer");
- case, punctuation (not operators or decimal points) and spacing;

and maps the rewordings the shipped attacks use to one form ("What's" -> "what is", "Tell me
which" -> "which", "Tell me" -> "what is", "Do you know who" -> "who", "Work out" ->
"compute", "Figure out" -> "calculate"). Both sides of a comparison go through the same
function, so it only has to be consistent, not grammatical.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["normalise", "sentences"]

_REASONING = re.compile(r"(?:^|(?<=[.?!]))\s*show your working\b[^.?!]*[.?!]?", re.IGNORECASE)
_LEAD = re.compile(r"^\s*(?:(?:hi|hello|hey)(?: there| team)?\s*[!,.]|quick question\s*:|"
                   r"please help\s*:|i was wondering\s*:)\s*", re.IGNORECASE)
_THANKS = re.compile(r"\s*(?:thanks|thank you)(?: so much)?\s*[.!]*\s*$", re.IGNORECASE)
_SWAPS = (
    (re.compile(r"\bwhat's\b"), "what is"),
    (re.compile(r"\btell me which\b"), "which"),
    (re.compile(r"\btell me\b"), "what is"),
    (re.compile(r"\bdo you know who\b"), "who"),
    (re.compile(r"\bwork out\b"), "compute"),
    (re.compile(r"\bfigure out\b"), "calculate"),
    (re.compile(r"\b(?:reply|respond)\b"), "answer"),
    (re.compile(r"\bjust the number\b"), "the number only"),
    (re.compile(r"\bkeep it short\b"), "answer briefly"),
)
_ONLY_SENTENCE = re.compile(r"^\s*(?:(?:answer|give)\b[^.?!]*\bonly\b|answer\s+(?:with|in|using|"
                            r"briefly)\b)[^.?!]*(?:[.?!]|$)")
_ONLY_CLAUSE = re.compile(r",?\s+and\s+(?:answer|give)\b[^.?!]*\bonly\b")
_LONE_DOT = re.compile(r"(?<!\d)\.|\.(?!\d)")  # a full stop, not a decimal point
_NOT_WORD = re.compile(r"[^\w{}.+\-*/=×÷%^<>]+")  # operators and decimals carry meaning
_OPERATOR = re.compile(r"([+\-*/=×÷%^<>])")
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+|\n+")


def sentences(text: str) -> list[str]:
    """``text`` cut after each ``.``, ``?`` or ``!`` followed by space, and at line breaks."""
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def normalise(prompt: str, suffixes: Iterable[str | None] = ()) -> str:
    """The words of ``prompt`` that carry its question, lowercased, one space apart (see the
    module docstring). ``suffixes`` are reasoning requests to drop from the end."""
    text = prompt.strip()
    for suffix in suffixes:
        s = (suffix or "").strip()
        if s and text.casefold().endswith(s.casefold()):
            text = text[: len(text) - len(s)].rstrip()
    text = _REASONING.sub(" ", text)
    kept: list[str] = []
    for sentence in sentences(text):
        s = sentence.strip()
        while True:
            shorter = _THANKS.sub("", _LEAD.sub("", s))
            if shorter == s:
                break
            s = shorter
        s = s.casefold()
        for pattern, repl in _SWAPS:
            s = pattern.sub(repl, s)
        s = _ONLY_CLAUSE.sub("", _ONLY_SENTENCE.sub("", s))
        s = _OPERATOR.sub(r" \1 ", _NOT_WORD.sub(" ", _LONE_DOT.sub(" ", s)))
        s = " ".join(s.split())
        if s:
            kept.append(s)
    return " ".join(kept)
