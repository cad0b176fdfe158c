"""``antidistill``: a proxy student trained on the classification teacher's answers, its
``Δ`` shift (sign checked with a real gradient step), lam 0 as the undefended teacher through
the reference endpoint, determinism with a seed, and one-line errors for bad parameters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
import torch

from extractbench.defenses import DEFENSES, DefenseConfigError, DefenseStack, RequestContext
from extractbench.defenses import antidistill as ad
from extractbench.defenses.antidistill import Antidistill, Shift, defender_loss
from extractbench.reference import tokenizer
from extractbench.reference.generation import generate
from extractbench.reference.lm import TinyLM
from extractbench.reference.teachers import load_reference
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.types import SamplingParams

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small models: one thread

TEACHER = "classify-ref"
TASK = {"family": "classification", "params": {"products": 120}, "n": 32}
SMALL = {"reference_task": TASK, "proxy_d_model": 16, "proxy_steps": 30}
KEY = "fake-ad-0-4a4b4c4d"


def make(**kw: Any) -> Antidistill:
    return Antidistill(**{**SMALL, **kw})


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """Every test builds its own proxy (the per-process cache would hide nondeterminism)."""
    ad._CACHE.clear()
    yield
    ad._CACHE.clear()


@pytest.fixture(scope="module")
def teacher() -> TinyLM:
    return load_reference(TEACHER)


def ctx(prompt: str = "Route this ticket: my Quillex arrived broken.",
        model: str = TEACHER) -> RequestContext:
    return RequestContext(api="openai", route="/v1/chat/completions", key_id="k", index=0,
                          model=model, prompt=prompt, params=SamplingParams())


def first_step(teacher: TinyLM, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's prompt ids ``(1, t)`` and its next-token logits ``(1, vocab)``."""
    ids = torch.tensor([tokenizer.prompt_ids(prompt, teacher.cfg.max_prompt)])
    with torch.no_grad():
        return ids, teacher(ids)[:, -1, :].float()


def test_registered_at_sampling_time_and_only_for_its_teacher() -> None:
    d = make()
    assert DEFENSES.get("antidistill") is Antidistill
    assert d.at_sampling_time and not d.ordered
    assert DefenseStack([d]).sampling_defenses() == ["antidistill"]  # a proxy refuses it
    assert d.teacher == TEACHER and d.reference_size == 32
    assert d.logits_processors(ctx(model="arith-cot-ref")) == []  # another family's model
    assert make(lam=0).logits_processors(ctx()) == []  # lam 0: nothing to apply


def test_the_proxy_trains_deterministically() -> None:
    a = make().proxy
    ad._CACHE.clear()
    b = make().proxy
    assert a is not b
    assert a.loss == b.loss and a.grad_norm == b.grad_norm > 0
    for (name, x), y in zip(a.plus.state_dict().items(), b.plus.state_dict().values(),
                            strict=True):
        assert torch.equal(x, y), name
    # the answers it learned are the teacher's, one per defender prompt
    assert len(a.examples) == 32 and {e.response for e in a.examples} <= {
        "billing", "shipping", "returns", "technical", "accounts", "sales"}
    ad._CACHE.clear()
    other = make(seed=1).proxy
    assert other.loss != a.loss
    assert make().proxy is make().proxy  # cached per process


def test_lam_shifts_the_distribution_deterministically(teacher: TinyLM) -> None:
    d = make(lam=0.5)
    [proc] = d.logits_processors(ctx())
    ids, logits = first_step(teacher, ctx().prompt)
    shifted = proc(ids, logits)
    p, q = torch.log_softmax(logits, -1), torch.log_softmax(shifted, -1)
    kl = float((p.exp() * (p - q)).sum())
    assert kl > 1e-4
    assert torch.equal(proc(ids, logits), shifted)  # the same step gives the same shift
    ad._CACHE.clear()
    [again] = make(lam=0.5).logits_processors(ctx())  # a new proxy from the same seed
    assert torch.equal(again(ids, logits), shifted)
    ad._CACHE.clear()
    [other] = make(lam=0.5, seed=1).logits_processors(ctx())
    assert not torch.equal(other(ids, logits), shifted)

    prompts = [e.prompt for e in d.proxy.examples[:8]]
    params = SamplingParams(max_tokens=12, temperature=1.0, seed=7, top_logprobs=0)
    one = [(g.text, g.logprobs) for g in generate(teacher, prompts, params, [proc])]
    two = [(g.text, g.logprobs) for g in generate(teacher, prompts, params, [again])]
    plain = [(g.text, g.logprobs) for g in generate(teacher, prompts, params)]
    assert one == two  # same seed, same outputs
    assert one != plain


def test_the_sign_a_step_on_a_high_delta_token_raises_the_proxys_loss() -> None:
    """One gradient step of the proxy on the token ``Δ`` ranks most harmful raises the
    defender's loss; on the one it ranks most helpful it lowers it."""
    proxy = make().proxy
    prompt = proxy.examples[0].prompt
    ids = torch.tensor([tokenizer.prompt_ids(prompt, proxy.model.cfg.max_prompt)])
    delta = proxy.delta(ids)[0]
    delta[[tokenizer.PAD, tokenizer.BOS, tokenizer.SEP]] = 0.0  # never sampled
    base, _ = defender_loss(proxy.model, proxy.examples)

    def after_step(token: int, lr: float = 1e-3) -> float:
        import copy

        student = copy.deepcopy(proxy.model).requires_grad_(True)
        logp = torch.log_softmax(student(ids)[0, -1, :], -1)[token]
        grads = torch.autograd.grad(logp, list(student.parameters()))
        with torch.no_grad():
            for param, g in zip(student.parameters(), grads, strict=True):
                param.add_(lr * g)  # a student learning from `token`
        return defender_loss(student, proxy.examples)[0] - base

    harmful, helpful = int(delta.argmax()), int(delta.argmin())
    assert delta[harmful] > 0 > delta[helpful]
    assert after_step(harmful) > 0 > after_step(helpful)


def sample(model: TinyLM, stack: DefenseStack, n: int = 6) -> list[tuple[str, list[float]]]:
    app = create_app({TEACHER: ServedModel(TEACHER, model)}, {KEY: "attacker-0"}, stack)
    out = []
    with RunningServer(app) as srv, openai.OpenAI(base_url=srv.openai_base_url, api_key=KEY,
                                                  max_retries=0) as c:
        for s in range(n):
            r = c.chat.completions.create(
                model=TEACHER, max_tokens=12, temperature=1.0, seed=s, logprobs=True,
                top_logprobs=3,
                messages=[{"role": "user", "content": f"Which team? Ticket: my Zorbix #{s}"}],
            ).choices[0]
            lps = [t.logprob for t in (r.logprobs.content or [])] if r.logprobs else []
            out.append((str(r.message.content), lps))
    return out


def test_lam_zero_is_exactly_the_undefended_teacher(teacher: TinyLM) -> None:
    clean = sample(teacher, DefenseStack())
    assert sample(teacher, DefenseStack([make(lam=0.0)])) == clean
    assert sample(teacher, DefenseStack([make(lam=0.5)])) != clean


def test_bad_params_give_one_line_errors() -> None:
    def problems(**params: Any) -> str:
        with pytest.raises(DefenseConfigError) as err:
            DefenseStack.from_specs([("antidistill", params)])
        assert "\n" not in str(err.value)
        return str(err.value)

    assert "defenses.0.params.lam" in problems(lam=-1, reference_task=TASK)
    assert "reference_task: missing required parameter" in problems(lam=1.0)
    assert "proxy_d_model: must be a multiple of 4" in problems(reference_task=TASK,
                                                                proxy_d_model=30)
    assert "unknown task" in problems(reference_task={"family": "nope"})
    assert "reference_task.params" in problems(reference_task={"family": "classification",
                                                               "params": {"nope": 1}})
    with pytest.raises(ValueError, match="antidistill: lam must be a number in \\[0, 1000\\]"):
        make(lam=-0.1)
    with pytest.raises(ValueError, match="antidistill: eps must be a number in \\(0, 10\\]"):
        make(eps=0)
    with pytest.raises(ValueError, match="unknown field"):
        make(reference_task={"family": "classification", "size": 3})


def test_exclude_reference_drops_held_out_prompts_before_the_proxy_is_built() -> None:
    d = make()
    first = d._prompts[0]
    assert d.exclude_reference(lambda p: p == first) == 1
    assert d.reference_size == 31
    assert first not in {e.prompt for e in d.proxy.examples}
    with pytest.raises(ValueError, match="every reference_task prompt is held-out"):
        d.exclude_reference(lambda p: True)


def test_shift_adds_lam_times_delta(teacher: TinyLM) -> None:
    proxy = make().proxy
    ids, logits = first_step(teacher, "Which team? Ticket: my Quillex is broken.")
    assert torch.allclose(Shift(proxy, 2.0)(ids, logits) - logits, 2.0 * proxy.delta(ids),
                          atol=1e-4)


def greedy(model: TinyLM, stack: DefenseStack, n: int = 16) -> list[str]:
    """The teacher's greedy answers to ``n`` benign tickets (another seed than the proxy's)."""
    from extractbench.tasks import TASKS

    task = TASKS.get("classification")(7, {"benign": n}, products=120)
    app = create_app({TEACHER: ServedModel(TEACHER, model)}, {KEY: "benign-light-0"}, stack)
    with RunningServer(app) as srv, openai.OpenAI(base_url=srv.openai_base_url, api_key=KEY,
                                                  max_retries=0) as c:
        return [str(c.chat.completions.create(
            model=TEACHER, max_tokens=task.max_answer_tokens, temperature=0.0,
            messages=[{"role": "user", "content": item.prompt}],
        ).choices[0].message.content) for item in task.split("benign")]


def test_an_answer_the_shift_changed_is_recorded_as_a_harm(teacher: TinyLM) -> None:
    # greedy answers: a request's text differs from the teacher's exactly when the shift moved
    # a top token, and those requests (only those) carry a transform event
    clean = greedy(teacher, DefenseStack())
    stack = DefenseStack([make(lam=12.0)])  # the small test proxy needs a strong shift
    shifted = greedy(teacher, stack)
    changed = {i for i, (a, b) in enumerate(zip(clean, shifted, strict=True)) if a != b}
    events = [e for e in stack.audit.events() if e.kind == "transform"]
    assert 0 < len(changed) < len(clean)  # it changes some answers, not all
    assert {e.query_index for e in events} == changed
    assert all(e.detail == {"changed": "answer", "mode": "antidistill"} for e in events)
    assert all(e.key_id == "benign-light-0" for e in events)
