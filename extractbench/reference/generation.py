"""Sampling from a :class:`~extractbench.reference.lm.TinyLM`: the generation interface the
reference endpoint serves and the students use for prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from extractbench.reference import tokenizer
from extractbench.reference.lm import TinyLM, batch_prompts
from extractbench.types import (
    Generation,
    LogitsProcessor,
    SamplingParams,
    TokenLogprob,
    TopLogprob,
)

__all__ = [
    "Generation",
    "LogitsProcessor",
    "SamplingParams",
    "TokenLogprob",
    "TopLogprob",
    "generate",
    "greedy",
]

MIN_TEMPERATURE = 1e-4
"""Temperatures below this sample greedily (as 0 does): a logit divided by 1e-38 overflows to
infinity and the softmax is undefined; at 1e-4 the distribution is already one-hot."""


def _top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    if top_p >= 1.0:
        return probs
    sorted_p, idx = probs.sort(dim=-1, descending=True)
    cum = sorted_p.cumsum(-1)
    drop = cum - sorted_p > top_p
    sorted_p = sorted_p.masked_fill(drop, 0.0)
    out = torch.zeros_like(probs).scatter(-1, idx, sorted_p)
    return out / out.sum(-1, keepdim=True)


@torch.no_grad()
def generate(
    model: TinyLM,
    prompts: Sequence[str],
    params: SamplingParams,
    processors: Sequence[LogitsProcessor] = (),
) -> list[Generation]:
    """Sample one completion per prompt (pass a prompt several times for ``n`` > 1)."""
    cfg = model.cfg
    p_ids = [tokenizer.prompt_ids(p, cfg.max_prompt) for p in prompts]
    ids, mask = batch_prompts(p_ids)
    gen: torch.Generator | None = None
    if params.temperature > 0:
        gen = torch.Generator().manual_seed(
            params.seed if params.seed is not None else int(torch.randint(0, 2**31, (1,)))
        )
    b = len(prompts)
    max_new = max(0, min(params.max_tokens, cfg.max_len - ids.shape[1]))
    out_ids: list[list[int]] = [[] for _ in range(b)]
    out_lp: list[list[TokenLogprob]] = [[] for _ in range(b)]
    done = [False] * b
    finish: list[Literal["stop", "length"]] = ["length"] * b
    bias = torch.zeros(cfg.vocab_size)
    for tid, val in params.logit_bias.items():
        if 0 <= tid < cfg.vocab_size:
            bias[tid] = max(-100.0, min(100.0, val))
    bias[tokenizer.PAD] = -1e9
    bias[tokenizer.BOS] = -1e9
    bias[tokenizer.SEP] = -1e9
    cache: list[dict[str, torch.Tensor]] = [{} for _ in range(cfg.n_layers)]
    step = ids  # the positions the next forward pass adds (keys and values are cached)
    for _ in range(max_new):
        logits = model(step, mask, cache)[:, -1, :].float() + bias
        for proc in processors:
            logits = proc(ids, logits)
        logp = torch.log_softmax(logits, dim=-1)
        if params.temperature < MIN_TEMPERATURE:  # 0, or so close that logits/t overflow
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(logits / params.temperature, dim=-1)
            probs = _top_p_filter(probs, params.top_p)
            nxt = torch.multinomial(probs, 1, generator=gen).squeeze(-1)
        for i in range(b):
            if done[i]:
                continue
            tid = int(nxt[i])
            if tid == tokenizer.EOS:
                done[i] = True
                finish[i] = "stop"
                continue
            out_ids[i].append(tid)
            if params.top_logprobs is not None:
                k = params.top_logprobs
                top: list[TopLogprob] = []
                if k > 0:
                    vals, idx = logp[i].topk(k)
                    top = [
                        TopLogprob(tokenizer.token_str(int(j)), tokenizer.token_bytes(int(j)),
                                   float(v))
                        for v, j in zip(vals, idx, strict=True)
                    ]
                out_lp[i].append(
                    TokenLogprob(tokenizer.token_str(tid), tokenizer.token_bytes(tid),
                                 float(logp[i, tid]), top)
                )
            if params.stop:
                text = tokenizer.decode(out_ids[i])
                if any(s and s in text for s in params.stop):
                    done[i] = True
                    finish[i] = "stop"
        if all(done):
            break
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones((b, 1), dtype=torch.bool)], dim=1)
        step = nxt[:, None]
    results = []
    for i in range(b):
        text = tokenizer.decode(out_ids[i])
        lps = out_lp[i] if params.top_logprobs is not None else None
        if params.stop:
            cut = min((text.find(s) for s in params.stop if s and s in text), default=-1)
            if cut >= 0:
                text = text[:cut]
                if lps is not None:
                    lps = lps[: len(text.encode("utf-8"))]
        results.append(
            Generation(
                text=text,
                finish_reason=finish[i],
                prompt_tokens=len(p_ids[i]),
                completion_tokens=len(out_ids[i]) + (1 if finish[i] == "stop" else 0),
                logprobs=lps,
            )
        )
    return results


def greedy(model: TinyLM, prompts: Sequence[str], max_tokens: int, batch: int = 256) -> list[str]:
    """Greedy completions, in batches; what students and scorers use."""
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    out: list[str] = []
    for s in range(0, len(prompts), batch):
        out.extend(g.text for g in generate(model, prompts[s : s + batch], params))
    return out
