"""``detector``: flags API keys whose query pattern looks like extraction, then acts.

The idea modelled: per-account abuse detection, as vendors describe it for distillation
campaigns (massive volumes, templated question sequences), plus PRADA (Juuti et al., EuroS&P
2019), which flags a client when the distances between its successive queries stop looking
like natural traffic. Three tests, each run per key (choose with ``tests``):

- ``prada``: for each new prompt, the distance to the nearest of the key's earlier prompts
  (hashed character n-grams, cosine) joins a list D; PRADA's growing set and threshold decide
  which prompts count as "earlier". Once the key has sent ``min_queries`` prompts, the
  Shapiro-Wilk W of D is computed every ``test_every`` queries; W < ``prada_delta`` flags.
- ``duplicate``: a prompt is templated when, digits abstracted, it is within
  ``dup_distance`` of one of the key's previous ``dup_window`` prompts (same template, other
  numbers; or a near-duplicate). The share of templated prompts among the last ``dup_window``
  at or above ``dup_fraction`` flags (tested like ``prada``).
- ``volume``: more than ``volume_max`` requests within ``volume_window_s`` seconds, or more
  than ``volume_total`` requests in all, flags.

Every flag is an audit ``flag`` event with the key id, time, the key's query index, the test,
its statistic and threshold and the prompt's hash (one event per test per key). After the
first flag, ``action`` applies to the key:

- ``block``: every later request (the flagging one included) gets 403 ``permission_error``;
- ``throttle``: at most one request per ``throttle_s`` seconds, others 429 with retry-after;
- ``perturb``: the key is served, but a ``perturb`` defense with ``scope: flagged`` in the
  same stack poisons its answers (checked when the stack is built);
- ``none``: flag only (measure detection without acting).

What it cannot see: a campaign spread over many keys, each below ``min_queries`` and the
volume limits, is never tested. Benign users who send many similar prompts are flagged too:
that is the false-positive rate the benchmark reports.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from extractbench.defenses import params as P
from extractbench.defenses.base import DEFENSES, Defense, Rejection, RequestContext
from extractbench.defenses.features import embed, min_distance, shapiro_w
from extractbench.registry import PluginParams, rule_error
from extractbench.tasks.base import prompt_hash

NAME = "detector"
Test = Literal["prada", "duplicate", "volume"]
TESTS: tuple[Test, ...] = ("prada", "duplicate", "volume")
ACTIONS = ("block", "throttle", "perturb", "none")


@dataclass
class _KeyState:
    n: int = 0
    bank: list[npt.NDArray[np.float32]] = field(default_factory=list)  # PRADA's growing set
    added: list[float] = field(default_factory=list)  # d_min of the prompts added to it
    threshold: float = 0.0
    dists: deque[float] = field(default_factory=deque)  # D
    recent: deque[npt.NDArray[np.float32]] = field(default_factory=deque)
    templated: deque[bool] = field(default_factory=deque)
    times: deque[float] = field(default_factory=deque)
    fired: dict[str, float] = field(default_factory=dict)  # test -> statistic
    worst: dict[str, float] = field(default_factory=dict)  # test -> most suspicious so far
    last_served: float | None = None


MAX_FEATURES = 2**24
"""Most ``(history + dup_window) x dim``: the hashed features kept per key (64 MB of float32
at this cap)."""


class DetectorParams(PluginParams):
    """The parameters of ``detector``. Besides each range, ``(history + dup_window) x dim <=
    2^24`` (the features kept per key stay under 64 MB)."""

    tests: tuple[Test, ...] | list[Test] = Field(default=TESTS, min_length=1,
                                                 description="the tests run per key (any of "
                                                 "prada, duplicate, volume; at least one)")
    action: Literal["block", "throttle", "perturb", "none"] = Field(
        default="block", description="what happens to a flagged key (perturb: needs a perturb "
        "defense with scope: flagged after it)")
    min_queries: int = Field(default=50, ge=3, le=1_000_000, description="prompts a key sends "
                             "before prada and duplicate test it, 3..10^6")
    test_every: int = Field(default=10, ge=1, le=1_000_000, description="queries between two "
                            "tests of a key, 1..10^6")
    prada_delta: float = Field(default=0.9, gt=0, le=1, description="prada: Shapiro-Wilk W "
                               "below this flags, (0, 1]")
    prada_window: int = Field(default=500, ge=3, le=100_000, description="prada: distances "
                              "kept per key, 3..100000")
    dup_distance: float = Field(default=0.05, ge=0, le=1, description="duplicate: distance "
                                "within which a prompt is templated, 0..1")
    dup_fraction: float = Field(default=0.9, gt=0, le=1, description="duplicate: share of "
                                "templated prompts that flags, (0, 1]")
    dup_window: int = Field(default=100, ge=1, le=10_000, description="duplicate: prompts "
                            "looked back at, 1..10000")
    volume_max: int = Field(default=300, ge=1, le=10**9, description="volume: requests within "
                            "volume_window_s that flag when exceeded, 1..10^9")
    volume_window_s: float = Field(default=60.0, gt=0, le=31_536_000, description="volume: the "
                                   "window in seconds, (0, 31536000] (a year)")
    volume_total: int | None = Field(default=None, ge=1, le=10**12, description="volume: "
                                     "requests in all that flag when exceeded, 1..10^12 "
                                     "(default: no limit)")
    throttle_s: float = Field(default=5.0, gt=0, le=86_400, description="throttle: seconds "
                              "between a flagged key's requests, (0, 86400]")
    history: int = Field(default=1000, ge=10, le=100_000, description="prompts remembered per "
                         "key, 10..100000 ((history + dup_window) x dim <= 2^24)")
    ngram: int = Field(default=3, ge=1, le=8, description="character n-gram length of the "
                       "features, 1..8")
    dim: int = Field(default=256, ge=16, le=65536, description="hashed feature dimensions, "
                     "16..65536")

    @model_validator(mode="after")
    def _rules(self) -> DetectorParams:
        if (self.history + self.dup_window) * self.dim > MAX_FEATURES:
            raise rule_error("history", f"(history + dup_window) x dim must be <= 2^24, got "
                             f"({self.history} + {self.dup_window}) x {self.dim} (remember "
                             "fewer prompts or use fewer dimensions)")
        return self


@DEFENSES.register(NAME, params=DetectorParams)
class Detector(Defense):
    """Flags keys by query pattern (PRADA distances, templated prompts, volume); then acts."""

    name = NAME

    def __init__(
        self,
        *,
        tests: Sequence[str] = TESTS,
        action: str = "block",
        min_queries: int = 50,
        test_every: int = 10,
        prada_delta: float = 0.9,
        prada_window: int = 500,
        dup_distance: float = 0.05,
        dup_fraction: float = 0.9,
        dup_window: int = 100,
        volume_max: int = 300,
        volume_window_s: float = 60.0,
        volume_total: int | None = None,
        throttle_s: float = 5.0,
        history: int = 1000,
        ngram: int = 3,
        dim: int = 256,
    ) -> None:
        if isinstance(tests, str) or not tests:
            raise ValueError(f"{NAME}: tests must be a non-empty list of {', '.join(TESTS)}")
        self.tests = tuple(P.choice(NAME, "tests", t, TESTS) for t in tests)
        self.action = P.choice(NAME, "action", action, ACTIONS)
        self.min_queries = P.integer(NAME, "min_queries", min_queries, 3)
        self.test_every = P.integer(NAME, "test_every", test_every, 1)
        self.prada_delta = P.number(NAME, "prada_delta", prada_delta, 0, 1, lo_open=True)
        self.prada_window = P.integer(NAME, "prada_window", prada_window, 3)
        self.dup_distance = P.number(NAME, "dup_distance", dup_distance, 0, 1)
        self.dup_fraction = P.number(NAME, "dup_fraction", dup_fraction, 0, 1, lo_open=True)
        self.dup_window = P.integer(NAME, "dup_window", dup_window, 1)
        self.volume_max = P.integer(NAME, "volume_max", volume_max, 1)
        self.volume_window_s = P.number(NAME, "volume_window_s", volume_window_s, 0,
                                        lo_open=True)
        vt = P.optional(NAME, "volume_total", volume_total, 1, integer=True)
        self.volume_total = None if vt is None else int(vt)
        self.throttle_s = P.number(NAME, "throttle_s", throttle_s, 0, lo_open=True)
        self.history = P.integer(NAME, "history", history, 10)
        self.ngram = P.integer(NAME, "ngram", ngram, 1, 8)
        self.dim = P.integer(NAME, "dim", dim, 16, 65536)
        self._keys: dict[str, _KeyState] = {}

    def check_stack(self, stack: Sequence[Defense]) -> None:
        if self.action != "perturb":
            return
        from extractbench.defenses.perturb import Perturb

        if not any(isinstance(d, Perturb) and d.scope == "flagged" for d in stack):
            raise ValueError(f"{NAME}: action 'perturb' needs a `perturb` defense with "
                             "scope: flagged in the same stack (add one, or pick another action)")

    def reset(self) -> None:
        self._keys.clear()

    def suspicion(self, key_id: str) -> dict[str, float]:
        """Per test, the most suspicious value its statistic has reached for ``key_id`` so
        far, as a score where higher is more suspicious: ``1 - W`` for prada, the templated
        share for duplicate, the requests in the window for volume. A test that has not yet
        been computed for the key is absent. What calibration thresholds
        (:mod:`extractbench.measure.calibration`)."""
        st = self._keys.get(key_id)
        return dict(st.worst) if st else {}

    def flagged(self, key_id: str) -> dict[str, float]:
        """Tests that have fired for ``key_id``, with their statistic."""
        st = self._keys.get(key_id)
        return dict(st.fired) if st else {}

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        st = self._keys.setdefault(ctx.key_id, _KeyState())
        now = self.now(ctx)
        if st.fired:
            rejection = self._act(st, now)
            if rejection is not None:
                return rejection
        was_flagged = bool(st.fired)
        self._observe(ctx, st, now)
        if st.fired and not was_flagged:
            return self._act(st, now)
        return None

    def _act(self, st: _KeyState, now: float) -> Rejection | None:
        if self.action == "block":
            return Rejection.forbidden(
                "This API key has been suspended: its traffic was flagged as automated "
                "model extraction.")
        if self.action == "throttle":
            if st.last_served is not None and now - st.last_served < self.throttle_s:
                wait = self.throttle_s - (now - st.last_served)
                return Rejection.rate_limited(
                    f"This API key is throttled to one request per {self.throttle_s:g} s. "
                    f"Please retry after {wait:.2f} s.", retry_after=wait)
            st.last_served = now
        return None

    # -- the tests --------------------------------------------------------------------------

    def _observe(self, ctx: RequestContext, st: _KeyState, now: float) -> None:
        st.n += 1
        due = st.n >= self.min_queries and (st.n - self.min_queries) % self.test_every == 0
        if "volume" in self.tests:
            st.times.append(now)
            while st.times and now - st.times[0] > self.volume_window_s:
                st.times.popleft()
            _worst(st, "volume", float(len(st.times)))
            if len(st.times) > self.volume_max:
                self._fire(ctx, st, "volume", len(st.times), self.volume_max,
                           window_s=self.volume_window_s)
            elif self.volume_total is not None and st.n > self.volume_total:
                self._fire(ctx, st, "volume", st.n, self.volume_total, window_s=None)
        if "prada" in self.tests:
            self._prada(ctx, st, due)
        if "duplicate" in self.tests:
            self._duplicate(ctx, st, due)

    def _prada(self, ctx: RequestContext, st: _KeyState, due: bool) -> None:
        v = embed(ctx.prompt, self.dim, self.ngram)
        if not st.bank:
            st.bank.append(v)
            return
        d = min_distance(v, np.stack(st.bank))
        assert d is not None
        st.dists.append(d)
        if len(st.dists) > self.prada_window:
            st.dists.popleft()
        if len(st.added) >= 2:
            arr = np.asarray(st.added)
            st.threshold = max(st.threshold, float(arr.mean() - arr.std()))
        if d > st.threshold:
            st.bank.append(v)
            st.added.append(d)
            if len(st.bank) > self.history:
                st.bank.pop(0)
                st.added.pop(0)
        if due and len(st.dists) >= 3 and ("prada" not in st.fired or self.action == "none"):
            w = shapiro_w(list(st.dists))
            _worst(st, "prada", 1.0 - w)
            if w < self.prada_delta:
                self._fire(ctx, st, "prada", w, self.prada_delta)

    def _duplicate(self, ctx: RequestContext, st: _KeyState, due: bool) -> None:
        v = embed(ctx.prompt, self.dim, self.ngram, abstract_digits=True)
        d = min_distance(v, np.stack(st.recent)) if st.recent else None
        st.templated.append(d is not None and d <= self.dup_distance)
        st.recent.append(v)
        if len(st.recent) > self.dup_window:
            st.recent.popleft()
            st.templated.popleft()
        if due and ("duplicate" not in st.fired or self.action == "none"):
            share = sum(st.templated) / len(st.templated)
            _worst(st, "duplicate", share)
            if share >= self.dup_fraction:
                self._fire(ctx, st, "duplicate", share, self.dup_fraction)

    def _fire(self, ctx: RequestContext, st: _KeyState, test: str, statistic: float,
              threshold: float, **extra: object) -> None:
        if test in st.fired:
            return
        st.fired[test] = float(statistic)
        self.record(ctx, "flag", test=test, statistic=round(float(statistic), 6),
                    threshold=threshold, queries=st.n, action=self.action,
                    prompt_hash=prompt_hash(ctx.prompt), **extra)


def _worst(st: _KeyState, test: str, score: float) -> None:
    st.worst[test] = max(score, st.worst.get(test, score))
