"""The ``hydra`` cross-account detector's sweeps over one cell's traffic
(:mod:`extractbench.defenses.hydra` has the rule).

Every key's stream (the attacker's from the harvest, the benign users' from the benign log;
:mod:`extractbench.measure.calibration` reads both) is cut at each sweep's simulated time; the
keys linked at that sweep are clustered; a key is detected at the first sweep that puts it in
a cluster of ``min_cluster`` keys. Sweeps run every ``sweep_s`` up to the cell's end (at most
``MAX_SWEEPS``, evenly spaced, and always one at the end).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from extractbench.defenses.features import embed
from extractbench.defenses.hydra import Hydra
from extractbench.measure.calibration import Stream

__all__ = ["MAX_SWEEPS", "HydraFigures", "sweep"]

MAX_SWEEPS = 48
ATTACKER_PREFIX = "attacker-"


@dataclass(frozen=True)
class HydraFigures:
    """What the sweeps found in one cell (``CellRecord.hydra``)."""

    attacker_keys: int
    attacker_flagged: int
    """Attacker keys in a flagged cluster at the last sweep."""
    benign_keys: int
    benign_flagged: int
    """Benign keys in a flagged cluster at the last sweep (false positives)."""
    clusters: int
    """Flagged clusters at the last sweep."""
    mixed_clusters: int
    """Flagged clusters with attacker and benign keys both."""
    detected_sim_s: float | None
    """The first sweep that flagged an attacker key (simulated seconds), or None."""
    sweeps: int

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


SAMPLE = 20
"""Prompts per key the content comparison reads (evenly spaced over its stream)."""


@dataclass(frozen=True)
class _Key:
    vecs: np.ndarray  # SAMPLE x dim, unit rows
    rate: float
    first: float
    last: float


def _features(stream: Stream, det: Hydra) -> _Key | None:
    if len(stream) < det.min_queries:
        return None
    picks = np.linspace(0, len(stream) - 1, min(SAMPLE, len(stream))).round().astype(int)
    vecs = np.stack([embed(stream[i][1], det.dim, det.ngram, abstract_digits=True)
                     for i in picks])
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    first, last = stream[0][0], stream[-1][0]
    return _Key(vecs / np.where(norms > 0, norms, 1.0), len(stream) / max(last - first, 1e-9),
                first, last)


def content(a: _Key, b: _Key) -> float:
    """How alike two keys' prompts are: each sampled prompt's best cosine among the other
    key's samples, averaged both ways (1: every prompt has a twin, numbers aside)."""
    sims = a.vecs @ b.vecs.T
    return float((sims.max(axis=1).mean() + sims.max(axis=0).mean()) / 2)


def _linked(a: _Key, b: _Key, det: Hydra) -> bool:
    if max(a.rate, b.rate) > det.rate_ratio * min(a.rate, b.rate):
        return False
    inter = min(a.last, b.last) - max(a.first, b.first)
    union = max(a.last, b.last) - min(a.first, b.first)
    overlap = 1.0 if union <= 0 else max(0.0, inter) / union
    return overlap >= det.overlap_min and content(a, b) >= det.content_min


def clusters(streams: Mapping[str, Stream], det: Hydra) -> list[set[str]]:
    """The flagged clusters (at least ``min_cluster`` keys linked together), largest first."""
    feats = {k: f for k, s in streams.items() if (f := _features(s, det)) is not None}
    keys = sorted(feats)
    parent = {k: k for k in keys}

    def root(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if root(a) != root(b) and _linked(feats[a], feats[b], det):
                parent[root(a)] = root(b)
    groups: dict[str, set[str]] = {}
    for k in keys:
        groups.setdefault(root(k), set()).add(k)
    found = [g for g in groups.values() if len(g) >= det.min_cluster]
    return sorted(found, key=lambda g: (-len(g), sorted(g)))


def sweep_times(end: float, every: float) -> list[float]:
    """The sweeps' simulated times: every ``every`` seconds up to ``end``, at most
    ``MAX_SWEEPS`` (evenly spaced), and ``end`` itself last."""
    n = min(MAX_SWEEPS - 1, math.floor(end / every)) if every > 0 else 0
    step = end / (n + 1) if n >= MAX_SWEEPS - 1 else every
    return [step * (i + 1) for i in range(n) if step * (i + 1) < end] + [end]


def sweep(params: Mapping[str, Any], streams: Mapping[str, Stream], end: float,
          benign: Sequence[str]) -> HydraFigures:
    """The detector with ``params`` swept over ``streams`` (every key's requests, simulated
    times) up to ``end``; ``benign`` names the legitimate keys, the others are the
    attacker's."""
    det = Hydra(**params)
    attackers = [k for k in streams if k not in set(benign)]
    times = sweep_times(end, det.sweep_s)
    detected: float | None = None
    found: list[set[str]] = []
    for t in times:
        found = clusters({k: [(at, p) for at, p in s if at <= t] for k, s in streams.items()},
                         det)
        if detected is None and any(k in g for g in found for k in attackers):
            detected = t
    flagged = set().union(*found) if found else set()
    return HydraFigures(
        attacker_keys=len(attackers), attacker_flagged=len(flagged & set(attackers)),
        benign_keys=len(benign), benign_flagged=len(flagged & set(benign)),
        clusters=len(found),
        mixed_clusters=sum(1 for g in found if g & set(attackers) and g & set(benign)),
        detected_sim_s=detected, sweeps=len(times))
