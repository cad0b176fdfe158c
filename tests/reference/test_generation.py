"""Incremental decoding with cached keys and values gives what a full forward pass gives."""

from __future__ import annotations

import torch

from extractbench.reference import tokenizer
from extractbench.reference.generation import generate
from extractbench.reference.lm import LMConfig, TinyLM, batch_prompts
from extractbench.types import SamplingParams


def test_cached_forward_matches_the_full_forward_on_a_left_padded_batch() -> None:
    torch.manual_seed(0)
    model = TinyLM(LMConfig(d_model=32, n_layers=2, n_heads=4, d_ff=64)).eval()
    prompts = [tokenizer.prompt_ids(p, model.cfg.max_prompt)
               for p in ("What is 12 + 30?", "Hi", "Encode 'stone' with the house cipher.")]
    ids, mask = batch_prompts(prompts)
    extra = torch.randint(4, 200, (len(prompts), 5))
    with torch.no_grad():
        full = model(torch.cat([ids, extra], 1),
                     torch.cat([mask, torch.ones_like(extra, dtype=torch.bool)], 1))
        cache: list[dict[str, torch.Tensor]] = [{} for _ in model.blocks]
        steps = [model(ids, mask, cache)]
        for j in range(extra.shape[1]):
            grown = torch.cat([mask, torch.ones((len(prompts), j + 1), dtype=torch.bool)], 1)
            steps.append(model(extra[:, j : j + 1], grown, cache))
    incremental = torch.cat(steps, 1)
    real = torch.cat([mask, torch.ones_like(extra, dtype=torch.bool)], 1)
    # compare at real (non-padding) positions: same logits up to float rounding
    assert torch.allclose(full[real], incremental[real], atol=1e-5)
    assert cache[0]["k"].shape[2] == ids.shape[1] + extra.shape[1]


def test_generation_is_unchanged_by_the_cache_for_greedy_and_sampling() -> None:
    torch.manual_seed(1)
    model = TinyLM(LMConfig(d_model=32, n_layers=2, n_heads=4, d_ff=64)).eval()
    prompts = ["What is 7 + 8?", "Route this ticket: my blender broke", "x"]
    for params in (SamplingParams(max_tokens=12, temperature=0.0, top_logprobs=2),
                   SamplingParams(max_tokens=12, temperature=1.0, seed=5)):
        cached = generate(model, prompts, params)
        original = model.forward
        seen: dict[str, torch.Tensor] = {}

        def no_cache(step: torch.Tensor, mask: torch.Tensor | None = None,
                     cache: object = None, seen: dict[str, torch.Tensor] = seen,
                     original: object = original) -> torch.Tensor:
            # recompute every position each step, as decoding did before the cache
            seen["ids"] = step if "ids" not in seen else torch.cat([seen["ids"], step], 1)
            assert callable(original)
            out: torch.Tensor = original(seen["ids"], mask)
            return out

        model.forward = no_cache  # type: ignore[method-assign]
        try:
            full = generate(model, prompts, params)
        finally:
            model.forward = original  # type: ignore[method-assign]
        assert [g.text for g in cached] == [g.text for g in full]
        if params.top_logprobs:
            for a, b in zip(cached, full, strict=True):
                assert a.logprobs is not None and b.logprobs is not None
                assert all(abs(x.logprob - y.logprob) < 1e-4
                           for x, y in zip(a.logprobs, b.logprobs, strict=True))


def test_a_temperature_just_above_zero_samples_greedily_instead_of_crashing() -> None:
    torch.manual_seed(2)
    model = TinyLM(LMConfig(d_model=32, n_layers=2, n_heads=4, d_ff=64)).eval()
    prompts = ["What is 7 + 8?", "x"]
    greedy = generate(model, prompts, SamplingParams(max_tokens=8, temperature=0.0))
    for t in (1e-45, 1e-38, 1e-5):  # logits / 1e-38 overflow float32
        tiny = generate(model, prompts, SamplingParams(max_tokens=8, temperature=t, seed=3))
        assert [g.text for g in tiny] == [g.text for g in greedy]
