"""Parameter extraction through the logit API (Carlini et al. 2024, "Stealing part of a
production language model"; Finlayson et al. 2024): a known-answer check, not a distillation
campaign.

A decoder's next-token logits are ``W h``: the final projection ``W`` (vocab x hidden) times a
hidden state ``h``. Over many prompts the logit vectors span at most ``hidden`` dimensions, so
the singular values of a matrix of them fall off a cliff after the hidden size, and the top
right singular vectors span ``W``'s columns: the projection up to an invertible linear map.

Reading a whole logit vector through an OpenAI-compatible API: ``top_logprobs`` returns the
logprobs of the ``top`` most likely tokens; ``logit_bias`` adds ``bias`` to chosen tokens so
that they are the most likely ones. One query (``max_tokens=1``) per ``top - 1`` tokens, each
with the same reference token biased alongside them: the difference of two biased tokens'
logprobs is the difference of their logits (the bias and the softmax normaliser cancel). The
rows are logit differences against the reference token, ``(W - w_ref) h``, which have the
same rank.

:func:`read_logits` does the querying through an :class:`~extractbench.campaign.oracle.Oracle`
(budgeted, priced, logged like any campaign); :func:`recover` estimates the hidden size (the
largest drop between consecutive log singular values after the first, if it is at least a
factor of 3: :data:`CLEAR_GAP`) and, given the true projection (the
reference teachers make it known), the subspace error: the sine of the largest principal
angle between the recovered and the true column spaces (0: the same space) and the relative
residual of the best linear map from one to the other. ``scripts/param_extraction.py`` runs it
against each reference teacher and each ``logprob-guard`` variant.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from extractbench.campaign.outcomes import Answer

__all__ = ["Logits", "Recovery", "extract_through", "read_logits", "recover"]

TOP = 20
"""``top_logprobs`` asked for (the OpenAI API's maximum)."""
BIAS = 100.0
"""``logit_bias`` on the tokens read (the OpenAI API's maximum)."""
CLEAR_GAP = 0.5
"""The smallest drop (log10: a factor of about 3) between consecutive singular values that
counts as the bottleneck; below it the hidden size is not recovered."""


@dataclass
class Logits:
    """Logit differences against ``ref`` read for each prompt (rows) and token (columns):
    NaN where the endpoint did not return the token (a hidden, capped or ignored logprob)."""

    rows: np.ndarray
    ref: int
    queries: int
    failed: int

    @property
    def complete_tokens(self) -> list[int]:
        """Tokens read on every prompt (the columns the recovery can use)."""
        ok = ~np.isnan(self.rows).any(axis=0)
        return [int(t) for t in np.flatnonzero(ok)]


def _chunks(tokens: Sequence[int], size: int) -> list[list[int]]:
    return [list(tokens[i:i + size]) for i in range(0, len(tokens), size)]


async def read_logits(oracle: object, prompts: Sequence[str], vocab: Sequence[str],
                      *, ref: int = 0, top: int = TOP, bias: float = BIAS) -> Logits:
    """Each prompt's logit differences against token ``ref`` over the ``vocab`` (token id ->
    its string as the endpoint returns it), ``top - 1`` tokens per query, or fewer when a
    first query finds the endpoint returns fewer alternatives than asked for."""
    others = [t for t in range(len(vocab)) if t != ref]
    index = {s: i for i, s in enumerate(vocab)}
    rows = np.full((len(prompts), len(vocab)), np.nan)
    # adaptive: a first query learns how many alternatives the endpoint returns (a cap on
    # top_logprobs), and the reads are cut to fit
    probe = await oracle.query(  # type: ignore[attr-defined]
        prompts[0], max_tokens=1, temperature=0.0, top_logprobs=top,
        logit_bias={t: bias for t in [ref, *others[:top - 1]]})
    given = (len(probe.logprobs[0].top) if isinstance(probe, Answer) and probe.logprobs
             else 0)
    if given < 2:
        return Logits(rows=rows, ref=ref, queries=1, failed=int(not isinstance(probe, Answer)))
    jobs = [(p, chunk) for p in range(len(prompts)) for chunk in _chunks(others, given - 1)]

    async def one(p: int, chunk: list[int]) -> bool:
        out = await oracle.query(  # type: ignore[attr-defined]
            prompts[p], max_tokens=1, temperature=0.0, top_logprobs=top,
            logit_bias={t: bias for t in [ref, *chunk]})
        if not isinstance(out, Answer) or not out.logprobs:
            return False
        got = {index[a.token]: a.logprob for a in out.logprobs[0].top if a.token in index}
        if ref not in got:
            return True  # answered, but the reference token was not among them
        for t in chunk:
            if t in got:
                rows[p, t] = got[t] - got[ref]
        rows[p, ref] = 0.0
        return True

    results = await asyncio.gather(*(one(p, c) for p, c in jobs))
    failed = sum(not r for r in results)
    return Logits(rows=rows, ref=ref, queries=len(jobs) + 1, failed=failed)


def extract_through(endpoint: Any, key: tuple[str, str], prompts: Sequence[str],
                    vocab: Sequence[str], log_path: Path, *, queries: int,
                    prices: Any = None) -> tuple[Logits, Any]:
    """:func:`read_logits` through a fresh oracle on ``endpoint`` with one attacker ``key``
    (key id, secret), at most ``queries``, logged to ``log_path``: the logits and what was
    spent (:class:`~extractbench.campaign.purse.Spent`)."""
    from extractbench.campaign.oracle import Oracle
    from extractbench.config.budget import Budget
    from extractbench.logs.harvest import HarvestLog

    oracle = Oracle(endpoint, [key], Budget(queries=queries), HarvestLog(log_path),
                    prices=prices, concurrency=16)

    async def go() -> Logits:
        try:
            return await read_logits(oracle, prompts, vocab)
        finally:
            await oracle.aclose()

    logits = asyncio.run(go())
    return logits, oracle.stats().spent


@dataclass(frozen=True)
class Recovery:
    """What the singular values say: the hidden size, and how well the subspace matches."""

    hidden: int | None
    """The estimated hidden size (``None``: too few complete rows or columns to tell)."""
    tokens: int
    """Tokens (columns) used: those read on every prompt."""
    singular: list[float]
    gap: float
    """log10 of the ratio at the drop: how clear the cliff is (about 0 for noise)."""
    sin_angle: float | None = None
    """Sine of the largest principal angle between the recovered and the true column spaces
    (``None`` without the truth, or when the estimated size differs from it)."""
    residual: float | None = None
    """||best linear map of the recovered basis - true projection|| / ||true projection||."""


def recover(logits: Logits, true_head: np.ndarray | None = None) -> Recovery:
    """The hidden size from ``logits`` (and, given the true ``true_head``, vocab x hidden, its
    subspace error over the tokens read)."""
    cols = logits.complete_tokens
    m = logits.rows[:, cols]
    if len(cols) < 3 or m.shape[0] < 3:
        return Recovery(hidden=None, tokens=len(cols), singular=[], gap=0.0)
    s = np.linalg.svd(m, compute_uv=False)
    s = s[s > 0]
    if len(s) < 3:
        return Recovery(hidden=None, tokens=len(cols), singular=[float(x) for x in s], gap=0.0)
    logs = np.log10(s)
    drops = logs[:-1] - logs[1:]
    # the first direction is the rows' large common part (every logit moves with the hidden
    # state's mean): a drop after it is not the bottleneck, so the search starts at two
    k = int(np.argmax(drops[1:])) + 2
    gap = float(drops[k - 1])
    # no bottleneck seen: the cliff at the matrix's own size, or no clear cliff at all
    k_est = None if k >= min(m.shape) - 1 or gap < CLEAR_GAP else k
    out = Recovery(hidden=k_est, tokens=len(cols), singular=[float(x) for x in s], gap=gap)
    if true_head is None or k_est is None:
        return out
    truth = true_head[cols] - true_head[logits.ref]  # the rows' own map: (W - w_ref)
    _, _, vt = np.linalg.svd(m, full_matrices=False)
    basis = vt[:k_est].T  # tokens x k: the recovered column space
    q_true, _ = np.linalg.qr(truth)
    rank_true = int(np.linalg.matrix_rank(truth))
    q_true = q_true[:, :rank_true]
    cosines = np.linalg.svd(basis.T @ q_true, compute_uv=False)
    dims = min(basis.shape[1], q_true.shape[1])
    sin = math.sqrt(max(0.0, 1.0 - float(np.min(cosines[:dims])) ** 2)) if dims else 1.0
    if basis.shape[1] != q_true.shape[1]:
        sin = 1.0  # different dimensions: not the same space
    g, *_ = np.linalg.lstsq(basis, truth, rcond=None)
    residual = float(np.linalg.norm(basis @ g - truth) / np.linalg.norm(truth))
    return Recovery(hidden=out.hidden, tokens=out.tokens, singular=out.singular, gap=out.gap,
                    sin_angle=sin, residual=residual)
