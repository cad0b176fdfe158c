from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from extractbench.reference import teachers as reference
from extractbench.reference import tokenizer
from extractbench.reference.lm import LMConfig, TinyLM
from extractbench.reference.teachers import SPECS, EvalSpec, ReferenceSpec, evaluate, model_path
from extractbench.reference.training import TrainConfig
from extractbench.tasks import TASKS
from extractbench.tasks.arithmetic import REASONING_SUFFIX

FAMILY_TEACHERS = {"arithmetic": "arith-cot-ref", "cipher": "cipher-ref",
                   "knowledge": "knowledge-ref", "classification": "classify-ref"}


def test_every_family_names_a_teacher_that_exists() -> None:
    for family, name in FAMILY_TEACHERS.items():
        assert TASKS.get(family)(0, {"heldout": 5}).reference_model == name
        assert name in SPECS
        assert any(e.family == family for e in SPECS[name].evals)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_specs_are_small_with_a_softmax_bottleneck(name: str) -> None:
    cfg = SPECS[name].config
    assert cfg.vocab_size == tokenizer.VOCAB_SIZE > cfg.d_model
    n_params = TinyLM(cfg).n_params()
    assert n_params * 4 < 5_000_000  # float32 weights: a few MB at most


@pytest.mark.parametrize("name", sorted(SPECS))
def test_training_examples_fit_the_context_and_are_right(name: str) -> None:
    spec = SPECS[name]
    rng = random.Random(0)
    for _ in range(300):
        ex = spec.sampler(rng)
        kept = tokenizer.prompt_ids(ex.prompt, spec.config.max_prompt)
        # the model reads the prompt's tail: it must hold the whole question (tickets are
        # preceded by a fixed instruction that may be cut)
        question = ex.prompt.split("Ticket: ")[-1]
        assert question in tokenizer.decode(kept), ex.prompt
        assert len(kept) + len(tokenizer.encode(ex.response)) + 1 <= spec.config.max_len
    # the examples are ground truth: each family's own scorer accepts them
    hits = 0
    for e in spec.evals:
        task = e.task()
        answers = {i.prompt: i.answer for i in task.split("heldout")}
        rng = random.Random(1)
        for _ in range(3000):
            ex = spec.sampler(rng)
            prompt = ex.prompt.removesuffix(REASONING_SUFFIX)
            if prompt in answers:
                hits += 1
                assert task.extract(ex.response) == answers[prompt]
            if e.family == "arithmetic":
                expr = re.findall(r"[\d +*-]+\d", prompt)[0]
                assert task.extract(ex.response) == str(eval(expr))
    assert hits > 0 or name == "cipher-ref"  # cipher words are too many to meet by chance


def test_arith_cot_teacher_is_taught_working_only_when_asked() -> None:
    rng = random.Random(0)
    examples = [SPECS["arith-cot-ref"].sampler(rng) for _ in range(400)]
    asked = [e for e in examples if e.prompt.endswith(REASONING_SUFFIX)]
    assert 100 < len(asked) < 300
    assert all(e.response.startswith("<reasoning>") for e in asked)
    assert all(e.response.isdigit() for e in examples if e not in asked)


def test_evaluate_scores_answers_and_asks_for_working(monkeypatch: pytest.MonkeyPatch) -> None:
    task = TASKS.get("arithmetic")(0, {"heldout": 20}, digits=2, ops=["+"])
    truth = {i.prompt: i.answer for i in task.split("heldout")}
    seen: list[tuple[list[str], int]] = []

    def fake_greedy(model: object, prompts: list[str], max_tokens: int) -> list[str]:
        seen.append((prompts, max_tokens))
        out = []
        for k, p in enumerate(prompts):
            bare = p.removesuffix(REASONING_SUFFIX)
            ans = truth[bare] if k % 4 else "0"
            out.append(f"<reasoning>x</reasoning>\n{ans}" if p != bare else ans)
        return out

    monkeypatch.setattr(reference, "greedy", fake_greedy)
    model = TinyLM(LMConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32))
    assert evaluate(model, task) == 0.75
    assert evaluate(model, task, reasoning=True) == 0.75
    assert seen[0][1] == task.max_answer_tokens
    assert all(p.endswith(REASONING_SUFFIX) for p in seen[1][0])
    assert seen[1][1] == task.reasoning_max_tokens


def test_train_reference_writes_weights_and_accuracies(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ReferenceSpec(
        name="tiny", description="test", config=LMConfig(d_model=16, n_layers=1, n_heads=2,
                                                         d_ff=32),
        train=TrainConfig(steps=3, batch_size=4, seed=0), sampler=SPECS["cipher-ref"].sampler,
        evals=(EvalSpec("short words", "cipher", {"min_len": 3, "max_len": 4}, heldout=8),),
    )
    monkeypatch.setitem(SPECS, "tiny", spec)
    lines: list[str] = []
    path, acc = reference.train_reference("tiny", tmp_path, log=lines.append)
    assert path == tmp_path / "tiny.safetensors" and set(acc) == {"short words"}
    info = json.loads((tmp_path / "tiny.json").read_text())
    assert info["heldout_accuracy"] == {"short words": round(acc["short words"], 4)}
    assert info["train_steps"] == "3"
    assert TinyLM.load(path).cfg == spec.config
    assert any("held-out accuracy" in line for line in lines)


def test_load_reference_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeyError, match="unknown reference model 'nope'"):
        reference.load_reference("nope")
    monkeypatch.setattr(reference, "MODELS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="train-reference cipher-ref"):
        reference.load_reference("cipher-ref")


@pytest.mark.parametrize("name", sorted(FAMILY_TEACHERS.values()))
def test_shipped_teacher_is_accurate(name: str) -> None:
    """A quick check of the shipped weights on 60 held-out items of each evaluation (the
    full figures come from `extractbench train-reference`)."""
    if not model_path(name).exists():
        pytest.skip(f"{name} weights missing (extractbench train-reference {name})")
    model = reference.load_reference(name)
    for e in SPECS[name].evals:
        small = EvalSpec(e.label, e.family, e.params, e.reasoning, heldout=60, seed=7)
        assert evaluate(model, small.task(), small.reasoning) >= 0.9, e.label


@pytest.mark.parametrize("family", sorted(FAMILY_TEACHERS))
def test_customer_wording_says_what_the_teacher_answers(family: str) -> None:
    """A task that takes customer-worded benign users (``customer_wording``) has a teacher
    that answers every customer greeting as it answers the pool's wording; a task that does
    not, has a teacher that does not (so its users are sent matched prompts instead)."""
    from extractbench.campaign.benign import CUSTOMER_LEADS
    from extractbench.reference.generation import greedy

    name = FAMILY_TEACHERS[family]
    if not model_path(name).exists():
        pytest.skip(f"{name} weights missing (extractbench train-reference {name})")
    task = TASKS.get(family)(0, {"attack_pool": 50, "heldout": 10, "benign": 40})
    items = task.split("benign")
    model = reference.load_reference(name)

    def score(lead: str) -> float:
        out = greedy(model, [lead + i.prompt for i in items], task.max_answer_tokens)
        total = sum(task.score(task.extract(o), i) for o, i in zip(out, items, strict=True))
        return total / len(items)

    plain = score("")
    worst = min(score(lead) for lead in CUSTOMER_LEADS)
    assert plain >= 0.9
    if getattr(task, "customer_wording", False):
        assert worst >= plain - 0.05
    else:
        assert worst < plain - 0.3
