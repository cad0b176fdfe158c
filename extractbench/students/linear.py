"""``linear``: hashed word and character n-grams + logistic regression (scikit-learn), for
classification. Each distinct (normalised) harvested response is a class; the student predicts
the class of a prompt and answers with that class's most common response text."""

from __future__ import annotations

import time
import warnings
from collections import Counter
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression

from extractbench.registry import PluginParams, rule_error
from extractbench.students.base import STUDENTS, FitReport, TrainPair


def class_key(response: str) -> str:
    """Responses that differ only in case, surrounding space or a trailing full stop are one
    class."""
    return response.strip().rstrip(".").strip().casefold()


MAX_WEIGHTS = 2**25
"""Most ``max_classes x n_features`` (the logistic regression keeps about six floats per
class and feature in training: about 1.6 GB at this cap)."""


class LinearParams(PluginParams):
    """The parameters of ``linear``. Besides each range: ``char_min <= char_max`` and
    ``max_classes x n_features <= 2^25`` (the model's weights stay under about 1.6 GB)."""

    n_features: int = Field(default=2**16, ge=16, le=2**20, description="hashed features per "
                            "analyzer, 16..2^20")
    word_ngrams: int = Field(default=2, ge=1, le=5, description="longest word n-gram, 1..5")
    char_min: int = Field(default=3, ge=1, le=10, description="shortest character n-gram, "
                          "1..10")
    char_max: int = Field(default=5, ge=1, le=10, description="longest character n-gram, "
                          "1..10 (>= char_min)")
    C: float = Field(default=10.0, gt=0, le=1e6, description="inverse regularisation "
                     "strength, (0, 10^6]")
    max_iter: int = Field(default=200, ge=1, le=10_000, description="solver iterations, "
                          "1..10000")
    max_classes: int = Field(default=200, ge=1, le=10_000, description="most frequent "
                             "responses kept as classes, 1..10000")

    @model_validator(mode="after")
    def _rules(self) -> LinearParams:
        if self.char_min > self.char_max:
            raise rule_error("char_min", f"must be <= char_max ({self.char_max}), "
                             f"got {self.char_min}")
        if self.max_classes * self.n_features > MAX_WEIGHTS:
            raise rule_error("max_classes", f"max_classes x n_features must be <= 2^25, got "
                             f"{self.max_classes} x {self.n_features} (use fewer classes or "
                             "features)")
        return self


class LinearStudent:
    """Logistic regression over hashed n-grams of the prompt. Keeps the ``max_classes`` most
    frequent responses (pairs with rarer responses are dropped); with no data, answers ""."""

    def __init__(self, n_features: int = 2**16, word_ngrams: int = 2, char_min: int = 3,
                 char_max: int = 5, C: float = 10.0, max_iter: int = 200,
                 max_classes: int = 200) -> None:
        if word_ngrams < 1 or not 1 <= char_min <= char_max:
            raise ValueError("need word_ngrams >= 1 and 1 <= char_min <= char_max")
        if C <= 0 or max_classes < 1 or n_features < 16:
            raise ValueError("need C > 0, max_classes >= 1 and n_features >= 16")
        self._word = HashingVectorizer(n_features=n_features, ngram_range=(1, word_ngrams),
                                       alternate_sign=False)
        self._char = HashingVectorizer(n_features=n_features, analyzer="char_wb",
                                       ngram_range=(char_min, char_max), alternate_sign=False)
        self.C, self.max_iter, self.max_classes = C, max_iter, max_classes
        self._model: LogisticRegression | None = None
        self._texts: list[str] = []  # class index -> response text
        self._constant: str | None = None

    def _features(self, prompts: list[str]) -> Any:
        return sp.hstack([self._word.transform(prompts), self._char.transform(prompts)]).tocsr()

    def fit(self, pairs: list[TrainPair], seed: int) -> FitReport:
        t0 = time.time()
        self._model, self._texts, self._constant = None, [], None
        by_class: dict[str, Counter[str]] = {}
        for p in pairs:
            by_class.setdefault(class_key(p.response), Counter())[p.response] += 1
        ranked = sorted(by_class, key=lambda k: -sum(by_class[k].values()))[: self.max_classes]
        self._texts = [by_class[k].most_common(1)[0][0] for k in ranked]
        index = {k: i for i, k in enumerate(ranked)}
        kept = [(p.prompt, index[class_key(p.response)]) for p in pairs
                if class_key(p.response) in index]
        if len({y for _, y in kept}) == 1:
            self._constant = self._texts[kept[0][1]]
        elif kept:
            # saga handles wide sparse features fast; a capped run that has not fully
            # converged is still a fine classifier, so its warning is not news
            self._model = LogisticRegression(C=self.C, solver="saga", max_iter=self.max_iter,
                                             tol=1e-3, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                # many classes per sample (a free-text harvest) is allowed, if not useful
                warnings.filterwarnings("ignore", message="The number of unique classes")
                self._model.fit(self._features([x for x, _ in kept]),
                                np.array([y for _, y in kept]))
        # trained to convergence (a convex problem): the solver's epochs are its compute
        iters = int(np.max(self._model.n_iter_)) if self._model is not None else 0
        return FitReport(train_s=time.time() - t0, steps=iters, examples=len(kept),
                         details={"classes": len(self._texts), "dropped": len(pairs) - len(kept)},
                         converged=(iters < self.max_iter) if self._model is not None else None)

    def predict(self, prompts: list[str], max_tokens: int) -> list[str]:
        if self._model is None:
            return [self._constant or "" for _ in prompts]
        labels = self._model.predict(self._features(prompts))
        return [self._texts[int(y)] for y in labels]


@STUDENTS.register("linear", params=LinearParams)
def make_linear(**params: Any) -> LinearStudent:
    """Hashed word/char n-grams + logistic regression (scikit-learn), for classification."""
    return LinearStudent(**params)
