"""``logprob-harvest`` against the real reference server (tiny random model)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from extractbench.attacks.base import train_pairs
from extractbench.config.budget import Budget
from extractbench.defenses import Defense, RequestContext
from extractbench.reference.lm import TinyLM
from extractbench.students.tinylm import soft_labels
from extractbench.testing.attacks import BUDGETS, check_blocked, check_campaign, run_attack
from extractbench.types import Generation, LogitsProcessor


class AsciiOnly(Defense):
    """Keeps the random model to ASCII bytes, so its text is exactly its tokens."""

    name = "test-ascii"

    def logits_processors(self, ctx: RequestContext) -> list[LogitsProcessor]:
        def proc(ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
            out = logits.clone()
            out[:, 128:256] = -1e9
            return out

        return [proc]


class HideLogprobs(Defense):
    name = "test-hide-logprobs"

    def transform(self, ctx: RequestContext, generations: list[Generation]) -> list[Generation]:
        return [replace(g, logprobs=None) for g in generations]


@pytest.mark.parametrize("kind", list(BUDGETS))
def test_within_budget_and_no_heldout(tiny_lm: TinyLM, tmp_path: Path, kind: str) -> None:
    out = run_attack(tiny_lm, tmp_path, "logprob-harvest", BUDGETS[kind])
    check_campaign(out, min_share=0.8)


def test_harvests_top_k_soft_labels_the_student_can_use(tiny_lm: TinyLM,
                                                        tmp_path: Path) -> None:
    out = run_attack(tiny_lm, tmp_path, "logprob-harvest", Budget(queries=12),
                     {"top_logprobs": 3}, extra=[AsciiOnly()])
    assert all(e.request.params.top_logprobs == 3 for e in out.responses())
    pairs = train_pairs(out.entries)
    assert len(pairs) == 12
    assert all(p.top_logprobs and all(len(a) == 3 for a in p.top_logprobs) for p in pairs)
    assert all(soft_labels(p) is not None for p in pairs)  # they line up with the bytes


def test_stops_asking_when_the_endpoint_returns_none(tiny_lm: TinyLM, tmp_path: Path) -> None:
    out = run_attack(tiny_lm, tmp_path, "logprob-harvest", Budget(queries=32),
                     {"probe": 8, "batch": 8}, extra=[HideLogprobs()])
    assert any("returns no logprobs" in n for n in out.notes())
    params = [e.request.params for e in out.responses()]
    assert params[0].top_logprobs == 5 and params[-1].top_logprobs is None
    assert out.spent.queries == 32
    assert all(p.top_logprobs is None for p in train_pairs(out.entries))


@pytest.mark.parametrize("status", [403, 429])
def test_survives_a_blocking_defense(tiny_lm: TinyLM, tmp_path: Path, status: int) -> None:
    out = run_attack(tiny_lm, tmp_path, "logprob-harvest", Budget(queries=1000), {"batch": 8},
                     block=status)
    check_blocked(out)
