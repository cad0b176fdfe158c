"""The green-list watermark: green lists, the logits processor, and the z-test."""

from __future__ import annotations

import math
import random

import pytest
import torch

from extractbench.reference import tokenizer
from extractbench.reference.watermark import GreenList, detect, green_matrix, pairs

V = tokenizer.VOCAB_SIZE


def test_green_lists_have_gamma_share_and_depend_on_the_key() -> None:
    g = green_matrix(7, 0.25)
    assert g.shape == (V, V) and bool((g.sum(1) == round(0.25 * V)).all())
    assert torch.equal(g, green_matrix(7, 0.25))
    other = green_matrix(8, 0.25)
    overlap = (g & other).sum().item() / g.sum().item()
    assert 0.15 < overlap < 0.35  # independent lists overlap by about gamma
    assert not torch.equal(g[0], g[1])  # a different list after each previous token
    with pytest.raises(ValueError, match="gamma must be in \\(0, 1\\)"):
        green_matrix(7, 1.0)


def test_processor_adds_delta_to_the_green_tokens_after_the_last_token() -> None:
    wm = GreenList(key=3, gamma=0.5, delta=2.0)
    ids = torch.tensor([[tokenizer.BOS, 65], [tokenizer.BOS, 66]])
    out = wm(ids, torch.zeros(2, V))
    assert torch.equal(out[0] == 2.0, wm.green[65])
    assert torch.equal(out[1] == 2.0, wm.green[66])
    assert set(out.unique().tolist()) == {0.0, 2.0}


def test_first_token_is_scored_after_sep() -> None:
    assert pairs("ab") == [(tokenizer.SEP, 97), (97, 98)]


def test_z_is_near_zero_on_text_written_without_the_key() -> None:
    rng = random.Random(0)
    zs = []
    for trial in range(30):
        texts = ["".join(chr(rng.randrange(32, 127)) for _ in range(40)) for _ in range(10)]
        zs.append(detect(texts, key=trial, gamma=0.5).z)
    assert all(abs(z) < 4 for z in zs)
    assert abs(sum(zs) / len(zs)) < 1.0


def test_z_is_large_on_green_text_and_p_matches() -> None:
    wm = GreenList(key=11, gamma=0.5)
    rng = random.Random(1)
    green = wm.green
    text_ids, prev = [], tokenizer.SEP
    for _ in range(200):
        choices = [t for t in range(32, 127) if bool(green[prev, t])]
        prev = rng.choice(choices)
        text_ids.append(prev)
    result = wm.detect([bytes(text_ids).decode("ascii")])
    assert result.scored == 200 and result.green == 200
    assert result.z == pytest.approx(200 * 0.5 / math.sqrt(200 * 0.25))
    assert result.p < 1e-20 and result.green_fraction == 1.0


def test_unique_scores_each_pair_once_and_empty_input_is_nan() -> None:
    texts = ["1010101010"] * 20
    assert detect(texts, key=1).scored == 200
    assert detect(texts, key=1, unique=True).scored == 3  # (sep,1), (1,0), (0,1)
    empty = detect([""], key=1)
    assert empty.scored == 0 and math.isnan(empty.z)
