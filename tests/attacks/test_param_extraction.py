"""Parameter extraction through the logit API: the recovery's own arithmetic on a matrix of
known rank, and the known-answer check end to end (a real reference server, the real OpenAI
SDK through the oracle, the shipped classify-ref teacher)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from extractbench.attacks.param_extraction import Logits, extract_through, recover
from extractbench.reference.teachers import model_path

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_recover_finds_the_rank_and_the_subspace_of_a_known_matrix() -> None:
    rng = np.random.default_rng(0)
    head = rng.normal(size=(90, 12))
    hidden = rng.normal(size=(40, 12))
    rows = hidden @ (head - head[0]).T  # logit differences against token 0
    rows[:, 7] = np.nan  # a token never returned: dropped, not guessed
    got = recover(Logits(rows=rows, ref=0, queries=0, failed=0), head)
    assert got.hidden == 12 and got.tokens == 89
    assert got.sin_angle is not None and got.sin_angle < 1e-6
    assert got.residual is not None and got.residual < 1e-9
    # a little noise leaves the cliff; noise at the level of the signal hides it
    quiet = rows + rng.normal(scale=1e-6, size=rows.shape)
    assert recover(Logits(rows=quiet, ref=0, queries=0, failed=0), head).hidden == 12
    noisy = rows + rng.normal(scale=30.0, size=rows.shape)
    assert recover(Logits(rows=noisy, ref=0, queries=0, failed=0), head).hidden is None


def _extract(profile: list[tuple[str, dict[str, Any]]], n: int, tmp_path: Path) -> tuple[Any, int]:
    from extractbench.defenses import DefenseStack
    from extractbench.endpoints.clients import Endpoint
    from extractbench.reference import tokenizer
    from extractbench.reference.teachers import load_reference
    from extractbench.serving import RunningServer, ServedModel, create_app
    from extractbench.tasks import TASKS

    task = TASKS.get("classification")(0, {"attack_pool": n, "heldout": 10, "benign": 0})
    prompts = [i.prompt for i in task.split("attack_pool")][:n]
    key = ("attacker-0", "sk-test-extract-7d2a")
    app = create_app({"classify-ref": ServedModel.load("classify-ref",
                                                       model_path("classify-ref"))},
                     {key[1]: key[0]}, DefenseStack.from_specs(profile) if profile else None)
    vocab = [tokenizer.token_str(t) for t in range(tokenizer.VOCAB_SIZE)]
    with RunningServer(app) as srv:
        logits, _ = extract_through(
            Endpoint(api="openai", base_url=srv.openai_base_url, model="classify-ref"), key,
            prompts, vocab, tmp_path / f"h{len(profile)}.jsonl", queries=n * 20)
    head = load_reference("classify-ref").head.weight.detach().double().numpy()
    return recover(logits, head), int(load_reference("classify-ref").cfg.d_model)


@pytest.mark.skipif(not model_path("classify-ref").exists(), reason="reference weights missing")
def test_the_hidden_size_of_a_reference_teacher_is_recovered_exactly(tmp_path: Path) -> None:
    got, d_model = _extract([], 80, tmp_path)
    assert got.hidden == d_model
    assert got.tokens > 200  # nearly the whole vocabulary read through logit_bias
    assert got.residual is not None and got.residual < 1e-2


@pytest.mark.skipif(not model_path("classify-ref").exists(), reason="reference weights missing")
def test_logprob_guard_hiding_or_ignoring_logit_bias_defeats_it(tmp_path: Path) -> None:
    hide = ("logprob-guard", {"hide": True, "ignore_logit_bias": False})
    hidden, _ = _extract([hide], 12, tmp_path)
    assert hidden.hidden is None and hidden.tokens == 0
    ignored, _ = _extract([("logprob-guard", {})], 12, tmp_path)  # ignores logit_bias
    assert ignored.tokens < 40  # only what is naturally in the top 20 on every prompt
