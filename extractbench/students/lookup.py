"""``lookup``: nearest-neighbour memorisation of the harvest, the floor every learned student
must beat. For a prompt it returns the harvested response of the most similar harvested
prompt (cosine similarity of TF-IDF character n-grams, or words)."""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from sklearn.feature_extraction.text import TfidfVectorizer

from extractbench.registry import PluginParams, rule_error
from extractbench.students.base import STUDENTS, FitReport, TrainPair


class LookupParams(PluginParams):
    """The parameters of ``lookup`` (besides each range, ``ngram_min <= ngram_max``)."""

    analyzer: Literal["char_wb", "word"] = Field(default="char_wb", description="n-grams of "
                                                 "characters (within words) or of words")
    ngram_min: int = Field(default=2, ge=1, le=10, description="shortest n-gram, 1..10")
    ngram_max: int = Field(default=4, ge=1, le=10, description="longest n-gram, 1..10 "
                           "(>= ngram_min)")

    @model_validator(mode="after")
    def _rules(self) -> LookupParams:
        if self.ngram_min > self.ngram_max:
            raise rule_error("ngram_min", f"must be <= ngram_max ({self.ngram_max}), "
                             f"got {self.ngram_min}")
        return self


class LookupStudent:
    """Answers with the response of the nearest harvested prompt; with no data, answers "" (a
    harvest without an n-gram of the range answers its first response, as any prompt sharing
    no n-gram with the harvest does)."""

    def __init__(self, analyzer: Literal["char_wb", "word"] = "char_wb", ngram_min: int = 2,
                 ngram_max: int = 4) -> None:
        if analyzer not in ("char_wb", "word"):
            raise ValueError(f"analyzer must be 'char_wb' or 'word' (got {analyzer!r})")
        if not 1 <= ngram_min <= ngram_max:
            raise ValueError(f"need 1 <= ngram_min <= ngram_max (got {ngram_min}, {ngram_max})")
        self.analyzer, self.ngram = analyzer, (ngram_min, ngram_max)
        self._vec: TfidfVectorizer | None = None
        self._matrix: Any = None
        self._responses: list[str] = []

    def fit(self, pairs: list[TrainPair], seed: int) -> FitReport:
        t0 = time.time()
        self._vec, self._matrix, self._responses = None, None, [p.response for p in pairs]
        if pairs:
            self._vec = TfidfVectorizer(analyzer=self.analyzer, ngram_range=self.ngram,
                                        sublinear_tf=True, lowercase=True)
            try:
                self._matrix = self._vec.fit_transform([p.prompt for p in pairs])
            except ValueError as exc:
                # no prompt has an n-gram this long (word 5-grams of three-word prompts):
                # every prompt is as near as any other, as for a prompt that shares none
                if "empty vocabulary" not in str(exc):
                    raise
                self._vec = None
        return FitReport(train_s=time.time() - t0, steps=0, examples=len(pairs),
                         details={"memorised": len(pairs)})

    def predict(self, prompts: list[str], max_tokens: int) -> list[str]:
        if self._vec is None:  # no data: ""; no n-grams: the first response (argmax of 0s)
            first = self._responses[0] if self._responses else ""
            return [first for _ in prompts]
        out: list[str] = []
        for start in range(0, len(prompts), 512):
            sims = self._vec.transform(prompts[start : start + 512]) @ self._matrix.T
            best = np.asarray(sims.argmax(axis=1)).ravel()
            out.extend(self._responses[int(i)] for i in best)
        return out


@STUDENTS.register("lookup", params=LookupParams)
def make_lookup(**params: Any) -> LookupStudent:
    """Nearest-neighbour lookup of the harvest (the floor every learned student must beat)."""
    return LookupStudent(**params)
