"""Reference teachers: small transformer LMs trained from generated ground truth, shipped as
safetensors in ``extractbench/reference_models/`` and served by the reference endpoint.

``extractbench train-reference`` reproduces the shipped weights (same seed, same torch
version and thread count give the same file).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from extractbench.generation import greedy
from extractbench.lm import LMConfig, TinyLM
from extractbench.tasks.arithmetic import TEMPLATES, Arithmetic, solve
from extractbench.training import Example, TrainConfig, train

MODELS_DIR = Path(__file__).parent / "reference_models"


@dataclass(frozen=True)
class ReferenceSpec:
    """How one reference teacher is built and what it is good at."""

    name: str
    description: str
    config: LMConfig
    train: TrainConfig
    sampler: Callable[[random.Random], Example]
    eval_task: Callable[[], Arithmetic]


def _arith_sampler(rng: random.Random) -> Example:
    op = rng.choice("+-")
    a, b = rng.randrange(10, 100), rng.randrange(10, 100)
    if op == "-" and a < b:
        a, b = b, a
    return Example(rng.choice(TEMPLATES).format(a=a, op=op, b=b), str(solve(a, op, b)))


SPECS: dict[str, ReferenceSpec] = {
    "arith-ref": ReferenceSpec(
        name="arith-ref",
        description="2-digit addition and subtraction in natural language; bare answer",
        config=LMConfig(d_model=128, n_layers=3, n_heads=4, d_ff=512),
        train=TrainConfig(steps=4000, batch_size=64, lr=2e-3, seed=0),
        sampler=_arith_sampler,
        eval_task=lambda: Arithmetic(12345, {"heldout": 1000}, digits=2, ops=("+", "-")),
    ),
}


def model_path(name: str) -> Path:
    return MODELS_DIR / f"{name}.safetensors"


def available() -> list[str]:
    return sorted(n for n in SPECS if model_path(n).exists())


def load_reference(name: str) -> TinyLM:
    """Load a shipped reference teacher by name."""
    path = model_path(name)
    if name not in SPECS:
        raise KeyError(f"unknown reference model {name!r} (known: {', '.join(sorted(SPECS))})")
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: reference weights missing (run `extractbench train-reference {name}`)"
        )
    return TinyLM.load(path)


def evaluate(model: TinyLM, task: Arithmetic) -> float:
    items = task.split("heldout")
    out = greedy(model, [i.prompt for i in items], task.max_answer_tokens)
    return sum(task.score(task.extract(o), i) for o, i in zip(out, items, strict=True)) / len(items)


def train_reference(
    name: str,
    out_dir: Path = MODELS_DIR,
    steps: int | None = None,
    log: Callable[[str], None] = print,
) -> tuple[Path, float]:
    """Train one reference teacher from ground truth; returns (weights path, held-out acc)."""
    spec = SPECS[name]
    torch.set_num_threads(2)
    cfg = spec.train if steps is None else TrainConfig(**{**spec.train.__dict__, "steps": steps})
    torch.manual_seed(cfg.seed)
    model = TinyLM(spec.config)
    t0 = time.time()

    def on_step(step: int, loss: float) -> None:
        if step % 250 == 0 or step == cfg.steps - 1:
            log(f"{name}: step {step + 1}/{cfg.steps} loss {loss:.4f} ({time.time() - t0:.0f}s)")

    train(model, spec.sampler, cfg, on_step=on_step)
    acc = evaluate(model, spec.eval_task())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.safetensors"
    meta = {
        "name": name,
        "description": spec.description,
        "heldout_accuracy": f"{acc:.4f}",
        "train_steps": str(cfg.steps),
        "seed": str(cfg.seed),
        "torch": torch.__version__,
    }
    model.save(path, extra=meta)
    (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"{name}: held-out accuracy {acc:.4f}, {model.n_params()} parameters -> {path}")
    return path, acc
