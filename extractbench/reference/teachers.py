"""Reference teachers: small transformer LMs trained from generated ground truth, shipped as
safetensors in ``extractbench/reference/weights/`` and served by the reference endpoint.

One teacher per task family (``arith-cot-ref``, ``cipher-ref``, ``knowledge-ref``,
``classify-ref``; each task names its own in ``Task.reference_model``), plus the original
bare-answer ``arith-ref``. ``extractbench train-reference`` reproduces the shipped weights
(same seed, same torch version and thread count give the same file) and measures each
teacher's held-out accuracy at the difficulties the scenarios use.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from extractbench.reference.generation import greedy
from extractbench.reference.lm import LMConfig, TinyLM
from extractbench.reference.training import Example, TrainConfig, train
from extractbench.tasks import TASKS, Task, cipher, classification, knowledge
from extractbench.tasks import arithmetic as arith

MODELS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class EvalSpec:
    """One held-out measurement of a teacher: a task family at given difficulty."""

    label: str
    family: str
    params: dict[str, Any] = field(default_factory=dict)
    reasoning: bool = False
    """Append the task's reasoning suffix to every prompt (answers carry their working)."""
    heldout: int = 1000
    seed: int = 0

    def task(self) -> Task:
        return TASKS.get(self.family)(self.seed, {"heldout": self.heldout}, **self.params)


@dataclass(frozen=True)
class ReferenceSpec:
    """How one reference teacher is built and what it is good at."""

    name: str
    description: str
    config: LMConfig
    train: TrainConfig
    sampler: Callable[[random.Random], Example]
    evals: tuple[EvalSpec, ...]
    check_every: int = 1000
    """Every this many steps, score 200 held-out items of each evaluation (a different seed
    from the reported figures) and stop once all reach ``stop_at`` (0: never check). Training
    is deterministic, so the stopping step is too."""
    stop_at: float = 0.995
    init_from: str | None = None
    """Start from another shipped teacher's weights (same shape) instead of random ones."""
    threads: int = 1
    """Torch threads for training: part of what makes the weights reproducible."""


# -- ground-truth samplers (what each teacher is trained on) -------------------------------


def _arith_sampler(rng: random.Random) -> Example:
    """``arith-ref``: 2-digit addition and subtraction, bare answers."""
    op = rng.choice("+-")
    a, b = rng.randrange(10, 100), rng.randrange(10, 100)
    if op == "-" and a < b:
        a, b = b, a
    expr = f"{a} {op} {b}"
    return Example(rng.choice(arith.TEMPLATES).format(expr=expr), str(arith.solve(a, op, b)))


def _operand(rng: random.Random, digits: int) -> int:
    return rng.randrange(10 ** (digits - 1) if digits > 1 else 0, 10**digits)


def _arith_cot_sampler(rng: random.Random) -> Example:
    """``arith-cot-ref``: + and - of two operands of 1-2 digits; half the prompts ask for the
    (column-by-column) working."""
    op = rng.choice("+-")
    a, b = (_operand(rng, rng.choices((1, 2), weights=(1, 4))[0]) for _ in range(2))
    if op == "-" and a < b:
        a, b = b, a
    prompt = rng.choice(arith.TEMPLATES).format(expr=f"{a} {op} {b}")
    if rng.random() < 0.5:
        return Example(prompt + arith.REASONING_SUFFIX, arith.worked((a, b), (op,)))
    return Example(prompt, str(arith.solve(a, op, b)))


def _cipher_sampler(rng: random.Random) -> Example:
    word = cipher.make_word(rng, rng.randint(cipher.MIN_LEN, cipher.MAX_LEN))
    return Example(rng.choice(cipher.TEMPLATES).format(w=word), cipher.encode(word))


def _knowledge_sampler(rng: random.Random) -> Example:
    entity = rng.choice(knowledge.ENTITIES)
    attribute = rng.choice(knowledge.ATTRIBUTES)
    template = rng.randrange(len(knowledge.TEMPLATES[attribute]))
    return Example(knowledge.question(entity, attribute, template),
                   knowledge.FACTS[(entity, attribute)])


def _classify_sampler(rng: random.Random) -> Example:
    product = rng.choice(classification.PRODUCTS)
    text = classification.ticket(rng.choice(classification.OPENERS),
                                 rng.choice(classification.COMPLAINTS), product)
    return Example(rng.choice(classification.PROMPTS).format(t=text),
                   classification.PRODUCT_TEAM[product])


SPECS: dict[str, ReferenceSpec] = {
    "arith-ref": ReferenceSpec(
        name="arith-ref",
        description="2-digit addition and subtraction in natural language; bare answer",
        config=LMConfig(d_model=128, n_layers=3, n_heads=4, d_ff=512),
        train=TrainConfig(steps=4000, batch_size=64, lr=2e-3, seed=0),
        sampler=_arith_sampler,
        evals=(EvalSpec("digits=2 ops=+- terms=2", "arithmetic",
                        {"digits": 2, "ops": ["+", "-"]}, seed=12345),),
        check_every=0,  # reproduces the shipped file: fixed length, no early stop
        threads=2,
    ),
    "arith-cot-ref": ReferenceSpec(
        name="arith-cot-ref",
        description="arithmetic: + and - of 1-2 digit numbers; column-by-column working "
        "when the prompt ends 'Show your working.'",
        config=LMConfig(d_model=128, n_layers=3, n_heads=4, d_ff=512),
        # starts from arith-ref's weights (digits and operators already embedded); at lr 5e-4
        # and batch 32 the working was still at 0.5% after 750 steps, so the usual recipe
        train=TrainConfig(steps=6000, batch_size=64, lr=2e-3, seed=0),
        sampler=_arith_cot_sampler,
        evals=(
            EvalSpec("digits=2 ops=+", "arithmetic", {"digits": 2, "ops": ["+"]}),
            EvalSpec("digits=2 ops=+, working", "arithmetic", {"digits": 2, "ops": ["+"]},
                     reasoning=True),
            EvalSpec("digits=2 ops=+-", "arithmetic", {"digits": 2, "ops": ["+", "-"]}),
            EvalSpec("digits=2 ops=+-, working", "arithmetic", {"digits": 2, "ops": ["+", "-"]},
                     reasoning=True),
        ),
        check_every=500,
        stop_at=0.99,
        init_from="arith-ref",
        threads=2,
    ),
    "cipher-ref": ReferenceSpec(
        name="cipher-ref",
        description="the secret house cipher (letter substitution) on words of 3-8 letters",
        config=LMConfig(d_model=96, n_layers=2, n_heads=4, d_ff=384),
        train=TrainConfig(steps=6000, batch_size=64, lr=3e-3, seed=0),
        sampler=_cipher_sampler,
        evals=(
            EvalSpec("min_len=4 max_len=6", "cipher", {"min_len": 4, "max_len": 6}),
            EvalSpec("min_len=3 max_len=8", "cipher", {"min_len": 3, "max_len": 8}),
        ),
        check_every=500,
    ),
    "knowledge-ref": ReferenceSpec(
        name="knowledge-ref",
        description=f"private knowledge base: {knowledge.MAX_ENTITIES} fictional people x "
        f"{len(knowledge.ATTRIBUTES)} attributes, 4 phrasings each",
        config=LMConfig(d_model=128, n_layers=2, n_heads=4, d_ff=512),
        train=TrainConfig(steps=12000, batch_size=32, lr=3e-3, seed=0),
        sampler=_knowledge_sampler,
        evals=(
            EvalSpec("entities=60", "knowledge", {"entities": 60}, heldout=400),
            EvalSpec(f"entities={knowledge.MAX_ENTITIES}", "knowledge",
                     {"entities": knowledge.MAX_ENTITIES}),
        ),
    ),
    "classify-ref": ReferenceSpec(
        name="classify-ref",
        description=f"support-ticket routing to {len(classification.LABELS)} teams by a "
        f"hidden rule over {classification.MAX_PRODUCTS} products",
        config=LMConfig(d_model=64, n_layers=2, n_heads=4, d_ff=256),
        train=TrainConfig(steps=6000, batch_size=32, lr=3e-3, seed=0),
        sampler=_classify_sampler,
        evals=(
            EvalSpec("products=120", "classification", {"products": 120}),
            EvalSpec(f"products={classification.MAX_PRODUCTS}", "classification",
                     {"products": classification.MAX_PRODUCTS}),
        ),
        check_every=500,
    ),
}


class _Converged(Exception):
    """Raised from the step callback to end training once the quick checks pass."""


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


def evaluate(model: TinyLM, task: Task, reasoning: bool = False) -> float:
    """Held-out accuracy of ``model`` (greedy) on ``task``; with ``reasoning``, every prompt
    asks for the working and the answer is read after it."""
    items = task.split("heldout")
    suffix = task.reasoning_suffix if reasoning and task.reasoning_suffix else ""
    room = task.reasoning_max_tokens if suffix else task.max_answer_tokens
    out = greedy(model, [i.prompt + suffix for i in items], room)
    return sum(task.score(task.extract(o), i) for o, i in zip(out, items, strict=True)) / len(items)


def evaluate_spec(model: TinyLM, spec: ReferenceSpec) -> dict[str, float]:
    """Held-out accuracy on each of the spec's evaluations, by label."""
    return {e.label: evaluate(model, e.task(), e.reasoning) for e in spec.evals}


def train_reference(
    name: str,
    out_dir: Path = MODELS_DIR,
    steps: int | None = None,
    log: Callable[[str], None] = print,
) -> tuple[Path, dict[str, float]]:
    """Train one reference teacher from ground truth; returns (weights path, held-out
    accuracy by evaluation label)."""
    spec = SPECS[name]
    torch.set_num_threads(spec.threads)
    cfg = spec.train if steps is None else TrainConfig(**{**spec.train.__dict__, "steps": steps})
    torch.manual_seed(cfg.seed)
    model = TinyLM(spec.config)
    if spec.init_from is not None:
        base = load_reference(spec.init_from)
        if base.cfg != spec.config:
            raise ValueError(f"{name}: init_from {spec.init_from!r} has a different shape")
        model.load_state_dict(base.state_dict())
        log(f"{name}: starting from {spec.init_from} weights")
    t0 = time.time()

    checks = [EvalSpec(e.label, e.family, e.params, e.reasoning, heldout=200, seed=99)
              for e in spec.evals]
    stopped_at = cfg.steps

    def on_step(step: int, loss: float) -> None:
        nonlocal stopped_at
        if step % 250 == 0 or step == cfg.steps - 1:
            log(f"{name}: step {step + 1}/{cfg.steps} loss {loss:.4f} ({time.time() - t0:.0f}s)")
        if spec.check_every and (step + 1) % spec.check_every == 0 and step + 1 < cfg.steps:
            model.eval()
            quick = {c.label: evaluate(model, c.task(), c.reasoning) for c in checks}
            model.train()
            log(f"{name}: step {step + 1} check " + ", ".join(f"{k}: {v:.3f}"
                                                              for k, v in quick.items()))
            if min(quick.values()) >= spec.stop_at:
                stopped_at = step + 1
                raise _Converged

    try:
        train(model, spec.sampler, cfg, on_step=on_step)
    except _Converged:
        log(f"{name}: converged at step {stopped_at}")
    model.eval()
    train_s = time.time() - t0
    acc = evaluate_spec(model, spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.safetensors"
    meta = {
        "name": name,
        "description": spec.description,
        "heldout_accuracy": json.dumps({k: round(v, 4) for k, v in acc.items()}),
        "parameters": str(model.n_params()),
        "train_steps": str(stopped_at),
        "train_seconds": f"{train_s:.0f}",
        "seed": str(cfg.seed),
        "threads": str(spec.threads),
        "torch": torch.__version__,
    }
    model.save(path, extra=meta)
    info = {**meta, "heldout_accuracy": {k: round(v, 4) for k, v in acc.items()}}
    (out_dir / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    for label, value in acc.items():
        log(f"{name}: held-out accuracy {value:.4f} on {label}")
    log(f"{name}: {model.n_params()} parameters, {train_s:.0f}s training -> {path}")
    return path, acc
