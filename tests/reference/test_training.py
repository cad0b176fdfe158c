"""Training on prompt -> response pairs, with and without soft labels (KD)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch

from extractbench.reference import tokenizer
from extractbench.reference.lm import LMConfig, TinyLM
from extractbench.reference.training import (
    Example,
    TrainConfig,
    _batch,
    _encode,
    _soft_batch,
    kd_loss,
    train,
)

CFG = LMConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64)
A, B = ord("A"), ord("B")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models train fastest (and reproducibly) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def first_token_probs(model: TinyLM, prompt: str) -> torch.Tensor:
    ids = torch.tensor([tokenizer.prompt_ids(prompt, model.cfg.max_prompt)])
    with torch.no_grad():
        return torch.softmax(model(ids)[0, -1], -1)


def fit(examples: list[Example], kd_weight: float, steps: int = 60) -> TinyLM:
    torch.manual_seed(0)
    model = TinyLM(CFG)
    train(model, examples, TrainConfig(steps=steps, batch_size=8, lr=1e-2, warmup=5, seed=0,
                                       kd_weight=kd_weight))
    return model


def test_soft_labels_change_what_is_learned() -> None:
    # the teacher said "A" but gave "B" 40 %: text-only learns A only, KD keeps B alive
    soft = (((A, math.log(0.6)), (B, math.log(0.4))),)
    text = fit([Example("pick one", "A")], kd_weight=0.5)
    kd = fit([Example("pick one", "A", soft)], kd_weight=0.5)
    p_text, p_kd = first_token_probs(text, "pick one"), first_token_probs(kd, "pick one")
    assert p_text[A] > 0.95 and p_text[B] < 0.02
    # optimum of 0.5 CE(A) + 0.5 KL(0.6/0.4 || p restricted to {A, B}) is p(A)=0.8, p(B)=0.2
    assert 0.15 < p_kd[B] < 0.25 and p_kd[A] > 0.7


def test_without_soft_labels_training_is_unchanged() -> None:
    examples = [Example("What is 2 + 2?", "4"), Example("What is 3 + 5?", "8")]
    torch.manual_seed(0)
    m1, m2 = TinyLM(CFG), TinyLM(CFG)
    m2.load_state_dict(m1.state_dict())
    l1 = train(m1, examples, TrainConfig(steps=5, batch_size=4, kd_weight=0.0))
    l2 = train(m2, examples, TrainConfig(steps=5, batch_size=4, kd_weight=0.5))
    assert l1 == l2


def test_kd_loss_is_ce_where_a_position_has_one_alternative() -> None:
    ex = [_encode(Example("p", "AB", (((A, -0.1),), ((B, -0.5), (A, -1.2)))), CFG)]
    ids, _, target = _batch(ex)
    logits = torch.randn(1, ids.shape[1], CFG.vocab_size, requires_grad=True)

    soft = _soft_batch(ex, ids.shape[1])
    assert soft is not None
    on = soft[2][0]
    start = ex[0].start
    assert not on[start - 1] and on[start]  # "A" had one alternative, "B" two
    loss = kd_loss(logits, target, soft, 0.5)
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    ce = torch.nn.functional.cross_entropy(logits[0], target[0], ignore_index=-100,
                                           reduction="none")
    assert not torch.isclose(loss, ce[target[0] != -100].mean())  # the KL term counts


def test_soft_labels_are_cut_with_a_truncated_response() -> None:
    cfg = LMConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, max_len=12, max_prompt=8)
    soft = tuple(((A, -0.1), (B, -2.0)) for _ in range(10))
    enc = _encode(Example("hi", "A" * 10, soft), cfg)
    assert enc.soft is not None and len(enc.soft) == len(enc.ids) - enc.start - 1 == 7


def test_kd_weight_is_checked() -> None:
    with pytest.raises(ValueError, match="kd_weight"):
        TrainConfig(kd_weight=1.5)
