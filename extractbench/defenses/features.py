"""Prompt features the pattern-based defenses share: a cheap text embedding, distances, and
the Shapiro-Wilk normality statistic PRADA tests distance distributions with.

The embedding is a hashed bag of character n-grams, L2-normalised, so cosine distance is
``1 - a @ b`` and lies in [0, 1]. It needs no model and no download, and works on any text; with
``abstract_digits`` every digit becomes ``0``, so prompts that differ only in their numbers
(one template, different operands) are at distance 0.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Sequence
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]
_SPACE = re.compile(r"\s+")
_DIGIT = re.compile(r"\d")


def normalise(text: str, abstract_digits: bool = False) -> str:
    """Lower case, whitespace collapsed; digits replaced by ``0`` when ``abstract_digits``."""
    text = _SPACE.sub(" ", text.strip().lower())
    return _DIGIT.sub("0", text) if abstract_digits else text


def embed(text: str, dim: int = 256, n: int = 3, abstract_digits: bool = False) -> Vector:
    """Hashed character ``n``-gram counts of ``text`` (padded with spaces), unit length."""
    s = f" {normalise(text, abstract_digits)} "
    v = np.zeros(dim, dtype=np.float32)
    for i in range(max(1, len(s) - n + 1)):
        v[zlib.crc32(s[i : i + n].encode("utf-8")) % dim] += 1.0
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def embed_all(texts: Iterable[str], dim: int = 256, n: int = 3,
              abstract_digits: bool = False) -> npt.NDArray[np.float32]:
    rows = [embed(t, dim, n, abstract_digits) for t in texts]
    return np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)


def min_distance(v: Vector, bank: npt.NDArray[np.float32]) -> float | None:
    """Cosine distance from ``v`` to its nearest row of ``bank`` (``None`` when empty)."""
    if len(bank) == 0:
        return None
    return float(max(0.0, 1.0 - float(np.max(bank @ v))))


def shapiro_w(values: Sequence[float]) -> float:
    """The Shapiro-Wilk W statistic of ``values`` (Royston's 1992 approximation of the
    coefficients, as in scipy's ``swilk``). W is near 1 for normal samples and lower the less
    normal they are. Needs at least 3 values; constant data gives 1.0 (no evidence)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n < 3:
        raise ValueError(f"shapiro_w needs at least 3 values, got {n}")
    ss = float(np.sum((x - x.mean()) ** 2))
    if ss <= 1e-24 * max(1.0, float(np.max(np.abs(x))) ** 2):
        return 1.0
    if n == 3:
        a = np.array([-math.sqrt(0.5), 0.0, math.sqrt(0.5)])
    else:
        nd = NormalDist()
        m = np.array([nd.inv_cdf((i - 0.375) / (n + 0.25)) for i in range(1, n + 1)])
        mm = float(np.sum(m**2))
        u = 1.0 / math.sqrt(n)
        c = m / math.sqrt(mm)
        an = c[-1] + 0.221157 * u - 0.147981 * u**2 - 2.071190 * u**3 + 4.434685 * u**4 \
            - 2.706056 * u**5
        a = m.copy()
        if n > 5:
            an1 = c[-2] + 0.042981 * u - 0.293762 * u**2 - 1.752461 * u**3 \
                + 5.682633 * u**4 - 3.582633 * u**5
            phi = (mm - 2 * m[-1] ** 2 - 2 * m[-2] ** 2) / (1 - 2 * an**2 - 2 * an1**2)
            a = m / math.sqrt(phi)
            a[-1], a[-2], a[0], a[1] = an, an1, -an, -an1
        else:
            phi = (mm - 2 * m[-1] ** 2) / (1 - 2 * an**2)
            a = m / math.sqrt(phi)
            a[-1], a[0] = an, -an
    w = float(np.dot(a, x)) ** 2 / ss
    return min(1.0, w)
