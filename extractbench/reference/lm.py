"""A small decoder-only transformer language model over the byte vocabulary.

Used for the reference teachers (served by the reference endpoint) and the ``tinylm`` student.
Weights are stored as safetensors with the config in the file's metadata.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from extractbench.reference import tokenizer
from extractbench.reference.config import LMConfig as LMConfig  # re-exported


class Block(nn.Module):
    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.ff = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model)
        )
        self.n_heads = cfg.n_heads

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None,
                cache: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``x``: the new positions (all of them without a cache). ``cache`` holds this
        block's keys and values of the earlier positions and is extended in place."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        h = self.n_heads
        q = q.view(b, t, h, d // h).transpose(1, 2)
        k = k.view(b, t, h, d // h).transpose(1, 2)
        v = v.view(b, t, h, d // h).transpose(1, 2)
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        total = k.shape[2]
        causal = torch.ones(t, total, dtype=torch.bool, device=x.device).tril(total - t)
        mask = causal[None, None]
        if pad_mask is not None:  # pad_mask: (b, total) True where a real token is
            mask = mask & pad_mask[:, None, None, :]
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.ff(self.ln2(x))


class TinyLM(nn.Module):
    """Decoder-only transformer; ``forward`` returns logits over the byte vocabulary."""

    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None,
                cache: list[dict[str, torch.Tensor]] | None = None) -> torch.Tensor:
        """Logits for ``ids``. For incremental decoding pass ``cache`` (one empty dict per
        block on the first call): later calls give only the new ids, with ``pad_mask``
        covering every position so far."""
        t = ids.shape[1]
        past = cache[0]["k"].shape[2] if cache and "k" in cache[0] else 0
        if pad_mask is None:
            pos = torch.arange(past, past + t, device=ids.device)[None]
        else:  # left-padded batches: positions count real tokens only
            pos = (pad_mask.long().cumsum(1) - 1).clamp(min=0)[:, -t:]
        x = self.tok(ids) + self.pos(pos)
        for i, blk in enumerate(self.blocks):
            x = blk(x, pad_mask, None if cache is None else cache[i])
        return self.head(self.ln(x))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def save(self, path: Path, extra: dict[str, str] | None = None) -> None:
        meta = {"config": json.dumps(asdict(self.cfg)), **(extra or {})}
        tensors = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(path), metadata=meta)

    @classmethod
    def load(cls, path: Path) -> TinyLM:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        cfg = LMConfig(**json.loads(meta["config"]))
        model = cls(cfg)
        model.load_state_dict(load_file(str(path)))
        model.eval()
        return model


def batch_prompts(prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad prompt id lists into a batch; returns (ids, real-token mask)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), tokenizer.PAD, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.bool)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p) :] = True
    return ids, mask
