"""``hf-sft``: LoRA fine-tuning of a local Hugging Face causal LM (optional extra).

For users with a GPU who want a realistic student: a pretrained causal LM checkpoint on disk
(a directory with ``config.json``, weights and a tokenizer, e.g. a small Qwen or Llama),
fine-tuned on the harvest with LoRA adapters (``peft``). Nothing is downloaded: the path is
opened with ``local_files_only=True``.

Install with ``pip install 'extractbench[hf]'`` (``transformers`` and ``peft``); both are
imported only when this student is used.

Training: each pair becomes ``prompt -> response + eos``, the prompt formatted with the
tokenizer's chat template when it has one (``chat_template=True``) or as ``prompt + "\\n"``;
the loss covers the response tokens only. Length is fixed per recipe like ``tinylm``:
``steps`` optimiser steps whatever the harvest size. With no pairs the base
checkpoint is used as is (the ``base_score`` recipe: the public model the attacker starts
from). Prediction is greedy.

Parameters: ``model_path`` (required), ``lora_r`` (8), ``lora_alpha`` (16), ``lora_dropout``
(0.0), ``target_modules`` (default: peft's choice for the architecture, else all linear
layers), ``lr`` (2e-4), ``batch_size`` (8), ``steps`` (200), ``max_length`` (tokens per
example, 512), ``device`` (``auto``: CUDA
when available), ``chat_template`` (true).
"""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from extractbench.registry import PluginParams, rule_error
from extractbench.students.base import STUDENTS, FitReport, TrainPair, refuse_removed_schedule

INSTALL_HINT = "pip install 'extractbench[hf]' (transformers and peft)"
_DEVICE = re.compile(r"auto|cpu|mps|cuda(?::[0-9]{1,2})?")


def _require() -> tuple[Any, Any]:
    try:
        import peft
        import transformers
    except ImportError as exc:
        raise ImportError(f"the hf-sft student needs {exc.name}: {INSTALL_HINT}") from None
    return transformers, peft


class HFSFTParams(PluginParams):
    """The parameters of ``hf-sft``."""

    model_path: str = Field(min_length=1, description="a local checkpoint directory "
                            "(config.json, weights, tokenizer); nothing is downloaded")
    lora_r: int = Field(default=8, ge=1, le=256, description="LoRA rank, 1..256")
    lora_alpha: int = Field(default=16, ge=1, le=1024, description="LoRA scaling, 1..1024")
    lora_dropout: float = Field(default=0.0, ge=0, lt=1, description="LoRA dropout, [0, 1)")
    target_modules: list[str] | None = Field(default=None, description="modules to adapt "
                                             "(default: peft's choice for the architecture, "
                                             "else all linear layers)")
    lr: float = Field(default=2e-4, gt=0, le=1, description="learning rate, (0, 1]")
    batch_size: int = Field(default=8, ge=1, le=256, description="pairs per optimiser step, "
                            "1..256")
    steps: int = Field(default=200, ge=1, le=100_000, description="optimiser steps, "
                       "1..100000, whatever the harvest size (the attacker's compute is fixed "
                       "per recipe)")
    max_length: int = Field(default=512, ge=8, le=8192, description="tokens per example, "
                            "8..8192")
    device: str = Field(default="auto", description="torch device: auto (CUDA when "
                        "available), cpu, mps, cuda or cuda:N")
    chat_template: bool = Field(default=True, description="format prompts with the tokenizer's "
                                "chat template when it has one")

    @model_validator(mode="before")
    @classmethod
    def _removed(cls, data: Any) -> Any:
        return refuse_removed_schedule(data)

    @model_validator(mode="after")
    def _rules(self) -> HFSFTParams:
        if not _DEVICE.fullmatch(self.device):
            raise rule_error("device", f"must be auto, cpu, mps, cuda or cuda:N, got "
                             f"{self.device!r}")
        return self


class HFSFTStudent:
    """LoRA supervised fine-tuning of a local causal LM checkpoint; see the module docstring."""

    def __init__(self, model_path: str, lora_r: int = 8, lora_alpha: int = 16,
                 lora_dropout: float = 0.0, target_modules: list[str] | None = None,
                 lr: float = 2e-4, batch_size: int = 8, steps: int = 200,
                 max_length: int = 512,
                 device: str = "auto", chat_template: bool = True) -> None:
        path = Path(model_path).expanduser()
        if not (path / "config.json").is_file():
            raise ValueError(f"hf-sft: model_path {str(path)!r} is not a local checkpoint "
                             "directory with a config.json (point it at a downloaded model; "
                             "nothing is fetched from the hub)")
        if lora_r < 1 or batch_size < 1 or max_length < 8:
            raise ValueError("hf-sft: lora_r and batch_size must be >= 1, max_length >= 8")
        if steps < 1:
            raise ValueError(f"hf-sft: steps must be at least 1, got {steps}")
        self.path = path
        self.lora_r, self.lora_alpha, self.lora_dropout = lora_r, lora_alpha, lora_dropout
        self.target_modules = target_modules
        self.lr, self.batch_size = lr, batch_size
        self.steps, self.max_length = steps, max_length
        self._device = device
        self.chat_template = chat_template
        self.model: Any = None
        self.tok: Any = None

    @property
    def device(self) -> str:
        """The torch device (``auto`` resolves to CUDA when available, when first needed)."""
        if self._device == "auto":
            import torch

            self._device = "cuda" if torch.cuda.is_available() else "cpu"
        return self._device

    # -- formatting ---------------------------------------------------------------------------

    def _prompt_text(self, prompt: str) -> str:
        if self.chat_template and getattr(self.tok, "chat_template", None):
            text = self.tok.apply_chat_template([{"role": "user", "content": prompt}],
                                                tokenize=False, add_generation_prompt=True)
            return str(text)
        return f"{prompt}\n"

    def _encode(self, pair: TrainPair) -> tuple[list[int], int]:
        """Token ids of prompt + response + eos, and where the response starts."""
        p = list(self.tok(self._prompt_text(pair.prompt))["input_ids"])
        r = list(self.tok(pair.response, add_special_tokens=False)["input_ids"])
        r.append(self.tok.eos_token_id)
        p = p[-(self.max_length // 2) :] if len(p) + len(r) > self.max_length else p
        r = r[: self.max_length - len(p)]
        return p + r, len(p)

    # -- the Student protocol -------------------------------------------------------------------

    def _load(self, seed: int) -> None:
        transformers, _ = _require()
        transformers.utils.logging.disable_progress_bar()
        transformers.set_seed(seed)
        self.tok = transformers.AutoTokenizer.from_pretrained(str(self.path),
                                                              local_files_only=True)
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            str(self.path), local_files_only=True).to(self.device)

    def fit(self, pairs: list[TrainPair], seed: int) -> FitReport:
        t0 = time.time()
        self._load(seed)
        steps = self.steps if pairs else 0
        losses: list[float] = []
        if steps:
            losses = self._train(pairs, steps, seed)
        self.model.eval()
        details: dict[str, Any] = {
            "first_loss": losses[0] if losses else None,
            "final_loss": losses[-1] if losses else None,
            "model_path": str(self.path), "device": self.device,
        }
        tail = losses[-max(1, len(losses) // 10):] if losses else []
        return FitReport(train_s=time.time() - t0, steps=steps, examples=len(pairs),
                         details=details, final_loss=sum(tail) / len(tail) if tail else None)

    def _train(self, pairs: list[TrainPair], steps: int, seed: int) -> list[float]:
        import random

        import torch

        transformers, peft = _require()
        targets: Any = self.target_modules
        conv1d = transformers.pytorch_utils.Conv1D  # GPT-2-style layers store weights transposed
        transposed = any(isinstance(m, conv1d) for m in self.model.modules())
        config = peft.LoraConfig(r=self.lora_r, lora_alpha=self.lora_alpha,
                                 lora_dropout=self.lora_dropout, target_modules=targets,
                                 fan_in_fan_out=transposed, task_type="CAUSAL_LM")
        with warnings.catch_warnings():
            # peft calls transformers APIs that newer transformers deprecate; not ours to fix
            warnings.simplefilter("ignore", FutureWarning)
            try:
                self.model = peft.get_peft_model(self.model, config)
            except ValueError:  # no default targets for this architecture
                config.target_modules = "all-linear"
                self.model = peft.get_peft_model(self.model, config)
        encoded = [self._encode(p) for p in pairs]
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=0.0)
        rng = random.Random(seed)
        pad = int(self.tok.pad_token_id)
        self.model.train()
        losses: list[float] = []
        for _ in range(steps):
            batch = [encoded[rng.randrange(len(encoded))] for _ in range(self.batch_size)]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            for i, (seq, start) in enumerate(batch):
                ids[i, : len(seq)] = torch.tensor(seq)
                mask[i, : len(seq)] = 1
                labels[i, start : len(seq)] = torch.tensor(seq[start:])
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                             labels=labels.to(self.device))
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            losses.append(float(out.loss.detach()))
        return losses

    def predict(self, prompts: list[str], max_tokens: int) -> list[str]:
        import torch

        if self.model is None:
            raise RuntimeError("hf-sft: fit() before predict()")
        with torch.no_grad():
            return self._predict(prompts, max_tokens)

    def _predict(self, prompts: list[str], max_tokens: int) -> list[str]:
        self.tok.padding_side = "left"
        out: list[str] = []
        for s in range(0, len(prompts), 32):
            texts = [self._prompt_text(p) for p in prompts[s : s + 32]]
            enc = self.tok(texts, return_tensors="pt", padding=True).to(self.device)
            gen = self.model.generate(**enc, max_new_tokens=max_tokens, do_sample=False,
                                      pad_token_id=self.tok.pad_token_id)
            new = gen[:, enc["input_ids"].shape[1] :]
            out.extend(self.tok.batch_decode(new, skip_special_tokens=True))
        return out


@STUDENTS.register("hf-sft", params=HFSFTParams)
def make_hf_sft(**params: Any) -> HFSFTStudent:
    """LoRA fine-tuning of a local Hugging Face causal LM (optional extra: extractbench[hf])."""
    return HFSFTStudent(**params)
