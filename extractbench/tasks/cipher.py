"""A proprietary skill: the "house cipher", a secret letter-rewriting rule that no public data
teaches ("Encode the word 'talvo' with the house cipher. Answer with the encoded word only.").

The rule is fixed (the teacher learned it): every letter is replaced through a secret
permutation of the alphabet. An attacker can only learn it from the endpoint's answers.

**Content.** The plain word, lowercased, is the content key: every template asking about one
word is one content, in one split. :meth:`Cipher.content_keys` reads the quoted word (any
quotes) or "the word X" out of any wording. Words are drawn from a seeded stream of
pseudo-words (the space is too large to enumerate) and split by
:func:`~extractbench.tasks.splits.assign_drawn`.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Iterator

from pydantic import Field

from extractbench.registry import PluginParams
from extractbench.tasks.answers import clean, final_part
from extractbench.tasks.base import TASKS, SplitName, TaskItem
from extractbench.tasks.splits import assign_drawn, pick

TEMPLATES = (
    "Encode the word '{w}' with the house cipher. Answer with the encoded word only.",
    "Apply the house cipher to '{w}'. Reply with the encoded word only.",
    "What is '{w}' in the house cipher? Answer with the encoded word only.",
)
REFERENCE_MODEL = "cipher-ref"
MIN_LEN, MAX_LEN = 3, 8  # word lengths the reference teacher was trained on
_SECRET = "extractbench-house-cipher-v1"
_VOWELS, _CONSONANTS = "aeiou", "bcdfghjklmnpqrstvwxyz"
_WORD = re.compile(r"[A-Za-z]+")
_QUOTED = re.compile(r"(?<![A-Za-z])['‘\"“]([A-Za-z]+)['’\"”](?![A-Za-z])")
_NAMED = re.compile(r"\bthe word\s+([A-Za-z]+)\b", re.IGNORECASE)


def _key() -> dict[str, str]:
    letters = list(string.ascii_lowercase)
    random.Random(_SECRET).shuffle(letters)
    return dict(zip(string.ascii_lowercase, letters, strict=True))


KEY = _key()


def encode(word: str) -> str:
    """The house cipher of a lowercase word."""
    return "".join(KEY[c] for c in word)


def make_word(rng: random.Random, length: int) -> str:
    """A pronounceable pseudo-word: mostly alternating consonants and vowels, every letter
    possible."""
    vowel = rng.random() < 0.3
    out = []
    for _ in range(length):
        pool = _VOWELS if vowel else _CONSONANTS
        if rng.random() < 0.15:
            pool = string.ascii_lowercase
        out.append(rng.choice(pool))
        vowel = not vowel if rng.random() < 0.85 else vowel
    return "".join(out)


class CipherParams(PluginParams):
    """The parameters of the ``cipher`` family."""

    min_len: int = Field(default=4, description=f"shortest word, {MIN_LEN}..{MAX_LEN}")
    max_len: int = Field(default=6, description=f"longest word, {MIN_LEN}..{MAX_LEN}")
    reference_model: str = Field(default=REFERENCE_MODEL, description="the reference teacher "
                                 "that serves it (see `extractbench list models`)")


class Cipher:
    """Secret substitution cipher on pseudo-words of ``min_len`` to ``max_len`` letters
    (3-8)."""

    name = "cipher"
    reasoning_suffix: str | None = None

    def __init__(self, seed: int, sizes: dict[str, int], min_len: int = 4, max_len: int = 6,
                 reference_model: str = REFERENCE_MODEL) -> None:
        for label, v in (("min_len", min_len), ("max_len", max_len)):
            if not isinstance(v, int) or not MIN_LEN <= v <= MAX_LEN:
                raise ValueError(f"{label} must be an integer from {MIN_LEN} to {MAX_LEN} "
                                 f"(got {v!r})")
        if min_len > max_len:
            raise ValueError(f"min_len ({min_len}) must be <= max_len ({max_len})")
        self.min_len, self.max_len = min_len, max_len
        self.reference_model = reference_model
        self.max_answer_tokens = self.reasoning_max_tokens = max_len + 4
        self._seed = seed
        space = sum(26**n for n in range(min_len, max_len + 1))
        chunks = assign_drawn(self.name, seed, self._draw(seed, sizes), sizes,
                              f"min_len={min_len}, max_len={max_len}", space)
        self._splits = {s: [self._item(w) for w, _ in c] for s, c in chunks.items()}

    def _draw(self, seed: int, sizes: dict[str, int]) -> Iterator[tuple[str, str]]:
        """Pseudo-words from a stream fixed by the seed (the sizes only cap how far it is
        read)."""
        rng = random.Random(f"{self.name}/{seed}")
        want = sum(max(0, int(v)) for v in sizes.values())
        for _ in range(40 * want + 1000):
            word = make_word(rng, rng.randint(self.min_len, self.max_len))
            yield word, word

    def _item(self, word: str) -> TaskItem:
        template = TEMPLATES[pick(self.name, self._seed, word, len(TEMPLATES), "template")]
        return TaskItem(key=word, prompt=template.format(w=word), answer=encode(word))

    def content_keys(self, prompt: str) -> tuple[str, ...]:
        """The plain words ``prompt`` asks about (quoted, or after "the word"), lowercased."""
        found = [m.group(1).lower() for m in _QUOTED.finditer(prompt)]
        if not found:
            found = [m.group(1).lower() for m in _NAMED.finditer(prompt)]
        return tuple(dict.fromkeys(found))

    def content_key(self, prompt: str) -> str | None:
        keys = self.content_keys(prompt)
        return keys[0] if keys else None

    def split(self, name: SplitName) -> list[TaskItem]:
        return list(self._splits[name])

    def extract(self, text: str) -> str | None:
        """The last word of the answer (after any reasoning block), lowercased."""
        rest = final_part(text)
        if rest is None:
            return None
        words = _WORD.findall(clean(rest))
        return words[-1].lower() if words else None

    def score(self, prediction: str | None, item: TaskItem) -> float:
        return float(prediction is not None and prediction == item.answer)


@TASKS.register("cipher", params=CipherParams)
def make_cipher(seed: int, sizes: dict[str, int], **params: object) -> Cipher:
    """Secret letter-substitution cipher (a proprietary skill); params: min_len, max_len."""
    known = set(CipherParams.model_fields)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown cipher parameter {unknown[0]!r} "
                         f"(known: {', '.join(sorted(known))})")
    return Cipher(seed, sizes, **params)  # type: ignore[arg-type]
