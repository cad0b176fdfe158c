"""``antidistill``: shift the teacher's next-token logits against a proxy student's learning.

The idea modelled: antidistillation sampling (Savani et al. 2025, "Antidistillation
Sampling"). The defender keeps a *proxy student* and a downstream objective: the proxy's loss
``L(θ)`` on the defender's own task data. At each decoding step every candidate token ``t``
gets a score ``Δ(t)``: how much one gradient step of the proxy on ``t`` would change ``L``.
With ``g = ∇L(θ) / |∇L(θ)|`` (the unit gradient; ``eps`` is then a step length in parameter
space) and a central finite difference between two perturbed copies of the proxy,

    Δ(t) = [log p_{θ+εg}(t | prefix) - log p_{θ-εg}(t | prefix)] / (2ε)
         ≈ g · ∇θ log p_θ(t | prefix)

and the teacher samples from ``logits + lam · Δ``.

**The sign.** A student that trains on token ``t`` takes a step ``θ' = θ + η ∇θ log p_θ(t)``
(gradient ascent on the token's log-likelihood), which changes the downstream loss by
``L(θ') - L(θ) ≈ η ∇L · ∇θ log p_θ(t) = η |∇L| Δ(t)``. So ``Δ(t) > 0`` marks a token that
*raises* the proxy's loss when learned from (it hurts the student) and ``Δ(t) < 0`` one that
lowers it (it helps). Adding ``+lam · Δ`` — equivalently ``-lam · h`` with ``h = -Δ`` the
token's helpfulness — down-weights the tokens that would help a student and up-weights those
that would hurt it, as in Savani et al. (``tests/defenses/test_antidistill.py`` checks the
sign with a real gradient step). ``lam = 0`` adds no processor: exactly the undefended teacher.

**The proxy** is a small :class:`~extractbench.reference.lm.TinyLM` (same byte tokenizer and
260-token vocabulary as every reference teacher, so its logits line up with the teacher's token
ids; same prompt window and context). It is trained from scratch, deterministically from
``seed``, on the *teacher's own greedy answers* to the defender's prompts: the ``benign``
split of ``reference_task`` (``{family, params, n, seed}``, as ``misinformation``'s), answered
by that family's reference teacher. ``g`` is the gradient of its loss on the same pairs. It is
built once, the first time a request reaches the teacher (not when the stack is built, so
``extractbench validate`` stays quick), and cached in memory per process; the two perturbed
copies ``θ ± εg`` are built once with it. Only requests for that teacher are shifted: the
proxy knows nothing about another family's model.

Parameters: ``lam`` (strength, >= 0), ``eps`` (finite-difference step, a length in parameter
space), ``reference_task``, ``seed`` (of the proxy's initialisation and training),
``proxy_d_model`` and ``proxy_steps`` (the proxy's width and training steps).

Limits: the proxy is tiny and trained in seconds, so its gradient speaks for one kind of
student; whether the shift transfers to other students is what a scenario measures
(``scenarios/antidistill.yaml``). A confident teacher (a bare label, a fixed-format working)
leads by more than ``lam · |Δ|`` at most steps, so greedy answers change only where the
teacher is unsure — or, at a large ``lam``, everywhere, which costs users as much as the
attacker. Sampling time only: works on the reference models, not in proxy mode.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from extractbench.defenses import params as P
from extractbench.defenses.base import DEFENSES, RequestContext
from extractbench.defenses.moved import ChangesAnswers, Moves
from extractbench.registry import PluginParams, rule_error
from extractbench.types import LogitsProcessor

if TYPE_CHECKING:  # torch loads when the proxy is built, not when a scenario is validated
    from collections.abc import Callable, Sequence

    import torch

    from extractbench.reference.lm import TinyLM
    from extractbench.reference.training import Example

NAME = "antidistill"

MAX_PROMPTS = 5000
"""Most defender prompts (the proxy trains on all of them)."""


class ReferenceTask(PluginParams):
    """``antidistill``'s ``reference_task``: the benign split of a registered task."""

    family: str = Field(min_length=1, description="a registered task family")
    params: dict[str, Any] = Field(default_factory=dict, description="the family's parameters")
    n: int = Field(default=200, ge=1, le=MAX_PROMPTS, description="benign prompts drawn, "
                   "1..5000")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="seed of the draw, 0..2^31-1")


class AntidistillParams(PluginParams):
    """The parameters of ``antidistill`` (``reference_task`` is required)."""

    lam: float = Field(default=1.0, ge=0, le=1000, description="strength of the shift, "
                       "0..1000 (0: the undefended teacher)")
    eps: float = Field(default=0.01, gt=0, le=10, description="finite-difference step along "
                       "the unit gradient, (0, 10]")
    reference_task: ReferenceTask = Field(description="{family, params, n, seed}: the "
                                          "defender's prompts, the benign split of a "
                                          "registered task (n: 1..5000, default 200)")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="seed of the proxy's "
                      "initialisation and training, 0..2^31-1")
    proxy_d_model: int = Field(default=32, ge=8, le=256, description="the proxy's width, "
                               "8..256 (a multiple of 4)")
    proxy_steps: int = Field(default=300, ge=1, le=5000, description="the proxy's training "
                             "steps (batch 32), 1..5000")

    @model_validator(mode="after")
    def _rules(self) -> AntidistillParams:
        if self.proxy_d_model % 4:
            raise rule_error("proxy_d_model", f"must be a multiple of 4 (the proxy's heads), "
                             f"got {self.proxy_d_model}")
        return self


@dataclass(frozen=True)
class Proxy:
    """The defender's proxy student and its two copies at ``θ ± eps·g``."""

    teacher: str
    """The reference teacher whose answers it learned (the model whose requests are shifted)."""
    model: TinyLM
    plus: TinyLM
    minus: TinyLM
    eps: float
    loss: float
    """The proxy's loss on the defender's pairs (nats per response token) after training."""
    grad_norm: float
    """``|∇L|`` before normalising."""
    examples: tuple[Example, ...]
    """The defender's pairs: its prompts with the teacher's greedy answers."""

    @property
    def max_len(self) -> int:
        return self.model.cfg.max_len

    def delta(self, ids: torch.Tensor) -> torch.Tensor:
        """``Δ`` for the next token after each row of ``ids`` (left-padded with ``<pad>``):
        ``(batch, vocab)``."""
        import torch

        from extractbench.reference import tokenizer

        with torch.no_grad():
            ids = ids[:, -self.max_len:]
            mask = ids != tokenizer.PAD
            up = torch.log_softmax(self.plus(ids, mask)[:, -1, :].float(), dim=-1)
            down = torch.log_softmax(self.minus(ids, mask)[:, -1, :].float(), dim=-1)
            return (up - down) / (2 * self.eps)


@dataclass(frozen=True)
class Shift:
    """The logits processor: ``logits + lam · Δ`` (see the module docstring for the sign)."""

    proxy: Proxy
    lam: float

    def __call__(self, ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return logits + self.lam * self.proxy.delta(ids).to(logits.dtype)


_CACHE: dict[str, Proxy] = {}
_CACHE_LOCK = threading.Lock()


def build_proxy(prompts: list[str], teacher: str, max_answer_tokens: int, *, seed: int,
                d_model: int, steps: int, eps: float,
                load: Callable[[str], TinyLM] | None = None) -> Proxy:
    """Train the proxy on ``teacher``'s greedy answers to ``prompts`` and build ``θ ± eps·g``;
    cached per process by everything that changes it. ``load`` gives the teacher by name
    (default: the shipped reference weights)."""
    key = json.dumps([prompts, teacher, max_answer_tokens, seed, d_model, steps, eps,
                      load is None])
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is None:
            hit = _build(prompts, teacher, max_answer_tokens, seed=seed, d_model=d_model,
                         steps=steps, eps=eps, load=load)
            if load is None:
                _CACHE[key] = hit
        return hit


def _build(prompts: list[str], teacher: str, max_answer_tokens: int, *, seed: int,
           d_model: int, steps: int, eps: float,
           load: Callable[[str], TinyLM] | None) -> Proxy:
    import torch

    from extractbench.reference.generation import greedy
    from extractbench.reference.lm import LMConfig, TinyLM
    from extractbench.reference.teachers import load_reference
    from extractbench.reference.training import Example, TrainConfig, train

    teacher_model = (load or load_reference)(teacher)
    answers = greedy(teacher_model, prompts, max_answer_tokens)
    examples = [Example(p, a) for p, a in zip(prompts, answers, strict=True)]
    tcfg = teacher_model.cfg
    cfg = LMConfig(d_model=d_model, n_layers=2, n_heads=4, d_ff=4 * d_model,
                   max_len=tcfg.max_len, max_prompt=tcfg.max_prompt)
    torch.manual_seed(seed)
    model = TinyLM(cfg)
    train(model, examples, TrainConfig(steps=steps, batch_size=32, lr=3e-3, seed=seed,
                                       kd_weight=0.0))
    model.eval()
    # g: the gradient of the mean response-token loss over every defender pair
    loss, grads = defender_loss(model, examples, grad=True)
    norm = float(torch.sqrt(sum(((gr * gr).sum() for gr in grads), torch.zeros(()))))
    plus, minus = copy.deepcopy(model), copy.deepcopy(model)
    with torch.no_grad():
        scale = eps / norm if norm > 0 else 0.0
        for pp, pm, gr in zip(plus.parameters(), minus.parameters(), grads, strict=True):
            pp.add_(scale * gr)
            pm.sub_(scale * gr)
    for m in (plus, minus):
        m.eval()
        m.requires_grad_(False)
    model.requires_grad_(False)
    return Proxy(teacher, model, plus, minus, eps, loss, norm, tuple(examples))


def defender_loss(model: TinyLM, examples: Sequence[Example], grad: bool = False
                  ) -> tuple[float, list[torch.Tensor]]:
    """The mean response-token loss ``L`` of ``model`` on ``examples`` and, with ``grad``, its
    gradient (one tensor per parameter, in ``model.parameters()`` order)."""
    import torch

    from extractbench.reference.training import kd_loss

    params = list(model.parameters())
    grads = [torch.zeros_like(p) for p in params]
    total, count = 0.0, 0
    for i in range(0, len(examples), 64):
        ids, mask, target = _batch(examples[i : i + 64], model)
        n = int((target != -100).sum())
        with torch.set_grad_enabled(grad):
            loss = kd_loss(model(ids, mask), target, None, 0.0)
            if grad:
                for acc, gr in zip(grads, torch.autograd.grad(loss * n, params), strict=True):
                    acc += gr
        total += float(loss.detach()) * n
        count += n
    return total / max(1, count), [gr / max(1, count) for gr in grads]


def _batch(examples: Sequence[Example], model: TinyLM
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, real-token mask and next-token targets (response tokens and the
    closing ``<eos>`` only, else -100), as the project's training loop builds them."""
    import torch

    from extractbench.reference import tokenizer
    from extractbench.reference.training import encode_example

    encoded = [encode_example(e, model.cfg) for e in examples]
    width = max(len(seq) for seq, _ in encoded)
    ids = torch.full((len(encoded), width), tokenizer.PAD, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.bool)
    target = torch.full((len(encoded), width), -100, dtype=torch.long)
    for i, (seq, start) in enumerate(encoded):
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = True
        target[i, start - 1 : len(seq) - 1] = torch.tensor(seq[start:])
    return ids, mask, target


@DEFENSES.register(NAME, params=AntidistillParams)
class Antidistill(ChangesAnswers):
    """Antidistillation sampling against a proxy student (reference models only)."""

    name = NAME

    @property
    def ordered(self) -> bool:
        """Each request on its own."""
        return False

    def __init__(self, *, reference_task: dict[str, Any], lam: float = 1.0, eps: float = 0.01,
                 seed: int = 0, proxy_d_model: int = 32, proxy_steps: int = 300) -> None:
        self.lam = P.number(NAME, "lam", lam, 0, 1000)
        self.eps = P.number(NAME, "eps", eps, 0, 10, lo_open=True)
        self.seed = P.integer(NAME, "seed", seed, 0, 2**31 - 1)
        self.proxy_d_model = P.integer(NAME, "proxy_d_model", proxy_d_model, 8, 256)
        if self.proxy_d_model % 4:
            raise ValueError(f"{NAME}: proxy_d_model must be a multiple of 4, got "
                             f"{proxy_d_model!r}")
        self.proxy_steps = P.integer(NAME, "proxy_steps", proxy_steps, 1, 5000)
        self._prompts, self.teacher, self.max_answer_tokens = _task_prompts(reference_task)
        self.loader: Callable[[str], TinyLM] | None = None
        """Gives the teacher by name (tests); ``None``: the shipped reference weights."""
        self._proxy: Proxy | None = None
        self._moves = Moves()

    @property
    def reference_size(self) -> int:
        return len(self._prompts)

    def exclude_reference(self, forbidden: Callable[[str], bool]) -> int:
        """Drop every defender prompt ``forbidden`` names (the benchmark's held-out content:
        a defense must not be tuned on the items it is scored on); returns how many. Call
        before the defense serves."""
        kept = [p for p in self._prompts if not forbidden(p)]
        dropped = len(self._prompts) - len(kept)
        if dropped:
            if not kept:
                raise ValueError(f"{NAME}: every reference_task prompt is held-out content; "
                                 "draw them with another seed or more n")
            self._prompts = kept
            self._proxy = None
        return dropped

    @property
    def proxy(self) -> Proxy:
        """The proxy student, built (and cached per process) on first use."""
        if self._proxy is None:
            self._proxy = build_proxy(self._prompts, self.teacher, self.max_answer_tokens,
                                      seed=self.seed, d_model=self.proxy_d_model,
                                      steps=self.proxy_steps, eps=self.eps, load=self.loader)
        return self._proxy

    def logits_processors(self, ctx: RequestContext) -> list[LogitsProcessor]:
        if self.lam == 0 or ctx.model != self.teacher:
            return []
        return [self.watched(ctx, Shift(self.proxy, self.lam))]


def _task_prompts(spec: dict[str, Any]) -> tuple[list[str], str, int]:
    """The benign prompts of ``spec``, the family's reference teacher and its answer length."""
    task = P.reference_task(NAME, spec, MAX_PROMPTS)
    if not task.reference_model:
        raise ValueError(f"{NAME}: reference_task.family: {task.name!r} has no reference "
                         "teacher to answer the defender's prompts")
    prompts = [item.prompt for item in task.split("benign")]
    if not prompts:
        raise ValueError(f"{NAME}: reference_task: the benign split is empty")
    return prompts, task.reference_model, task.max_answer_tokens
