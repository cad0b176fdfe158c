"""Whatever ``validate`` accepts, ``run`` runs (issue 12), for plugin parameters: every number
a student, defense or attack takes has a range on its parameter model, rules between fields
are model validators, and a scenario breaking either is refused by ``load_scenario`` (and
``extractbench validate``) with one line naming the file and the field."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel, Field

from extractbench.attacks import ATTACKS
from extractbench.config.scenario import ScenarioError, load_scenario
from extractbench.defenses import DEFENSES
from extractbench.registry import PluginParams, Registry, bounds, range_text
from extractbench.students import STUDENTS

REGISTRIES: dict[str, Registry[Any]] = {"student": STUDENTS, "defense": DEFENSES,
                                        "attack": ATTACKS}
PLUGINS = [(kind, name) for kind, reg in REGISTRIES.items() for name in reg.names()]

SCENARIO = """
version: 1
name: t
endpoints:
  ref: {kind: reference, model: knowledge-ref, defenses: DEFENSES}
tasks:
  kb: {family: knowledge, attack_pool: 60, heldout: 20, benign: 10}
attacks:
  a: {name: ATTACK, params: ATTACK_PARAMS}
budgets: [{queries: 12}]
students:
  s: {name: STUDENT, params: STUDENT_PARAMS}
"""


def scenario(tmp_path: Path, *, attack: str = "random-pool", attack_params: str = "{}",
             student: str = "lookup", student_params: str = "{}", defenses: str = "[]") -> Path:
    text = (SCENARIO.replace("ATTACK_PARAMS", attack_params).replace("ATTACK", attack)
            .replace("STUDENT_PARAMS", student_params).replace("STUDENT", student)
            .replace("DEFENSES", defenses))
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    return err.value.lines


# -- every number is bounded ----------------------------------------------------------------


def _numeric(annotation: Any) -> bool:
    """``int``, ``float``, or either with ``None`` (``bool`` is not a number here)."""
    members = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) \
        else (annotation,)
    kinds = [m for m in members if m is not type(None)]
    return bool(kinds) and all(m in (int, float) for m in kinds)


def _nested(annotation: Any) -> list[type[BaseModel]]:
    members = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) \
        else (annotation,)
    return [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]


def unbounded(model: type[BaseModel], prefix: str = "") -> list[str]:
    """The numeric fields of ``model`` (and of the models it holds) without a lower or an
    upper bound."""
    out: list[str] = []
    for name, info in model.model_fields.items():
        if _numeric(info.annotation):
            lo, hi, _, _ = bounds(info)
            if lo is None or hi is None:
                out.append(f"{prefix}{name}")
        for sub in _nested(info.annotation):
            out += unbounded(sub, f"{prefix}{name}.")
    return out


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_every_number_a_plugin_takes_has_both_bounds(kind: str, name: str) -> None:
    model = REGISTRIES[kind].params_model(name)
    assert model is not None, f"{kind} {name} declares no parameter model"
    assert unbounded(model) == [], (f"{kind} {name}: give these a Field(ge=..., le=...) a run "
                                    "can honour")


def test_the_bounds_check_catches_a_plugin_without_them() -> None:
    class Loose(PluginParams):
        steps: int = Field(default=10, ge=0, description="no upper bound")
        rate: float | None = Field(default=None, description="no bound at all")
        flag: bool = Field(default=True, description="not a number")

    class Outer(PluginParams):
        inner: Loose | None = Field(default=None, description="a nested model")

    assert unbounded(Loose) == ["steps", "rate"]
    assert unbounded(Outer) == ["inner.steps", "inner.rate"]


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_numbers_out_of_range_are_one_line_naming_the_field(kind: str, name: str) -> None:
    """Just below each lower bound and just above each upper one (the end itself when it is
    open) is refused, as one line ``field: must be ...``."""
    reg = REGISTRIES[kind]
    model = reg.params_model(name)
    assert model is not None
    base: dict[str, object] = {"model_path": "/m"} if name == "hf-sft" else {}
    base.update({"reference_task": {"family": "classification"}} if name == "antidistill"
                else {})
    checked = 0
    for field, info in model.model_fields.items():
        if not _numeric(info.annotation):
            continue
        lo, hi, lo_open, hi_open = bounds(info)
        step = 1 if int in get_args(info.annotation) or info.annotation is int else 0.5
        for bad in (lo if lo_open else lo - step, hi if hi_open else hi + step):
            lines = reg.validate_params(name, {**base, field: bad}, "p")
            assert len(lines) == 1 and lines[0].startswith(f"p.{field}: must be "), lines
            checked += 1
    assert checked or not any(_numeric(i.annotation) for i in model.model_fields.values())


PINNED = {("attack", "random-pool", "batch")}
"""Descriptions another test quotes word for word (tests/test_registry.py's help test)."""


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_each_description_states_the_range(kind: str, name: str) -> None:
    """``extractbench list`` shows the descriptions: each says both ends of its range, as
    the messages write them (``1..12``, ``(0, 1]``, ``0..2^31-1``)."""
    model = REGISTRIES[kind].params_model(name)
    assert model is not None
    for field, info in model.model_fields.items():
        if not _numeric(info.annotation) or (kind, name, field) in PINNED:
            continue
        lo, hi, _, _ = bounds(info)
        text = range_text(lo, hi).removeprefix(" in [").removesuffix("]").split(", ")
        assert all(end in (info.description or "") for end in text), (field, text)


# -- validate refuses, one line naming the file and the field --------------------------------


STUDENT_CASES = [
    ("tinylm", "{n_layers: 0}", "n_layers: must be an integer in [1, 12], got 0"),
    ("tinylm", "{n_layers: 100000}", "n_layers: must be an integer in [1, 12], got 100000"),
    ("tinylm", "{lr: -1}", "lr: must be a number in (0, 1], got -1"),
    ("tinylm", "{steps: 1000000}", "steps: must be an integer in [1, 100000], got 1000000"),
    ("tinylm", "{batch_size: 0}", "batch_size: must be an integer in [1, 1024], got 0"),
    ("tinylm", "{d_model: 7, n_heads: 4}", "d_model: must be an integer in [8, 1024], got 7"),
    ("tinylm", "{d_model: 12, n_heads: 8}", "d_model: must be a multiple of n_heads (8), got 12"),
    ("tinylm", "{epochs: 25, max_steps: 800}", "epochs: was removed: training length no "
     "longer follows the harvest size; give steps: N"),
    ("tinylm", "{d_model: 1024, n_layers: 12}", "batch_size: a training step of d_model 1024 x "
     "n_layers 12 x batch_size 64 needs about"),
    ("tinylm", "{kd_weight: 1.5}", "kd_weight: must be a number in [0, 1], got 1.5"),
    ("linear", "{char_min: 6}", "char_min: must be <= char_max (5), got 6"),
    ("linear", "{max_classes: 10000}", "max_classes: max_classes x n_features must be <= 2^25"),
    ("linear", "{C: 0}", "C: must be a number in (0, 10^6], got 0"),
    ("lookup", "{ngram_min: 3, ngram_max: 2}", "ngram_min: must be <= ngram_max (2), got 3"),
    ("lookup", "{ngram_max: 50}", "ngram_max: must be an integer in [1, 10], got 50"),
    ("hf-sft", "{model_path: /nowhere, lora_r: 0}", "lora_r: must be an integer in [1, 256], "
     "got 0"),
    ("hf-sft", "{model_path: /nowhere, device: tpu}", "device: must be auto, cpu, mps, cuda or "
     "cuda:N, got 'tpu'"),
]


@pytest.mark.parametrize(("student", "params", "line"), STUDENT_CASES,
                         ids=[f"{s}-{p}" for s, p, _ in STUDENT_CASES])
def test_a_student_parameter_out_of_range_is_one_line(tmp_path: Path, student: str,
                                                      params: str, line: str) -> None:
    path = scenario(tmp_path, student=student, student_params=params)
    lines = problems(path)
    assert len(lines) == 1 and lines[0].startswith(f"{path}: students.s.params.{line}"), lines


ATTACK_CASES = [
    ("random-pool", "{batch: 0}", "batch: must be an integer in [1, 1024], got 0"),
    ("random-pool", "{max_tokens: 1000000}", "max_tokens: must be an integer in [1, 4096]"),
    ("random-pool", "{temperature: 3}", "temperature: must be a number in [0, 2], got 3"),
    ("random-pool", "{patience: 0}", "patience: must be an integer in [1, 1000], got 0"),
    ("logprob-harvest", "{top_logprobs: 21}", "top_logprobs: must be an integer in [1, 20]"),
    ("cot-coercion", "{probe: 0}", "probe: must be an integer in [1, 100000], got 0"),
    ("synthetic", "{recombine: 2.0}", "recombine: must be a number in [0, 1], got 2.0"),
    ("active", "{probe_d_model: 33}", "probe_d_model: must be even, got 33"),
    ("active", "{first: 0}", "first: must be a number in (0, 1], got 0"),
    ("stealth", "{per_key_rpm: 0.0001}", "per_key_rpm: must be a number in [1, 60000]"),
    ("stealth", "{benign_share: 1.0}", "benign_share: must be a number in [0, 1), got 1.0"),
]


@pytest.mark.parametrize(("attack", "params", "line"), ATTACK_CASES,
                         ids=[f"{a}-{p}" for a, p, _ in ATTACK_CASES])
def test_an_attack_parameter_out_of_range_is_one_line(tmp_path: Path, attack: str,
                                                      params: str, line: str) -> None:
    path = scenario(tmp_path, attack=attack, attack_params=params)
    lines = problems(path)
    assert len(lines) == 1 and lines[0].startswith(f"{path}: attacks.a.params.{line}"), lines


DEFENSE_CASES = [
    ("perturb", "{poison_fraction: 1.5}", "poison_fraction: must be a number in [0, 1], "
     "got 1.5"),
    ("rate-limit", "{request_burst: 5}", "request_burst: needs requests_per_minute"),
    ("rate-limit", "{requests_per_day: 0}", "requests_per_day: must be an integer in "
     "[1, 10^9], got 0"),
    ("logprob-guard", "{max_top_logprobs: 21}", "max_top_logprobs: must be an integer in "
     "[0, 20], got 21"),
    ("reasoning-guard", "{summary_chars: -1}", "summary_chars: must be an integer in "
     "[0, 1000], got -1"),
    ("watermark", "{gamma: 1.0}", "gamma: must be a number in [0.01, 0.99], got 1.0"),
    ("detector", "{history: 100000}", "history: (history + dup_window) x dim must be <= 2^24"),
    ("detector", "{min_queries: 2}", "min_queries: must be an integer in [3, 10^6], got 2"),
    ("misinformation", "{reference_task: {family: knowledge, n: 1000000}}",
     "reference_task.n: must be an integer in [1, 100000], got 1000000"),
    ("misinformation", "{learn_first: 100000, dim: 4096}", "dim: 100000 reference prompts x "
     "dim 4096 is more than 2^27 features"),
]


@pytest.mark.parametrize(("defense", "params", "line"), DEFENSE_CASES,
                         ids=[f"{d}-{p}" for d, p, _ in DEFENSE_CASES])
def test_a_defense_parameter_out_of_range_is_one_line(tmp_path: Path, defense: str,
                                                      params: str, line: str) -> None:
    path = scenario(tmp_path, defenses=f"[{{name: {defense}, params: {params}}}]")
    lines = problems(path)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: endpoints.ref.defenses.0.params.{line}"), lines


def test_values_at_the_bounds_are_accepted(tmp_path: Path) -> None:
    path = scenario(tmp_path, student="tinylm",
                    student_params="{d_model: 8, n_layers: 12, n_heads: 8, batch_size: 1, "
                    "lr: 1, steps: 100000, kd_weight: 0}",
                    attack="stealth",
                    attack_params="{per_key_rpm: 60000, slowdown: 10, benign_share: 0.0}",
                    defenses="[{name: perturb, params: {temperature: 2, poison_fraction: 1}}]")
    assert load_scenario(path).students["s"].params["n_layers"] == 12


def test_validate_prints_the_line_and_exits_2(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from extractbench.cli.main import main

    path = scenario(tmp_path, student="tinylm", student_params="{n_layers: 0}")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{path}: students.s.params.n_layers: must be an integer in [1, 12], got 0"]


# -- what the model accepts, the plugin builds ------------------------------------------------


def _base(kind: str, name: str, tmp_path: Path) -> dict[str, Any]:
    """Parameters that make ``name`` buildable on their own (some defenses have nothing to do
    at their defaults)."""
    if name == "hf-sft":
        (tmp_path / "config.json").write_text("{}")
        return {"model_path": str(tmp_path)}
    return {"perturb": {"temperature": 1.0, "poison_fraction": 0.5},
            "rate-limit": {"requests_per_minute": 60.0},
            "misinformation": {"learn_first": 1, "reference_prompts": ["What is 2 + 2?"]},
            }.get(name, {})


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_each_bound_the_model_accepts_the_plugin_builds_with(kind: str, name: str,
                                                              tmp_path: Path) -> None:
    """A constructor's own checks are never narrower than its model's ranges."""
    reg = REGISTRIES[kind]
    model = reg.params_model(name)
    assert model is not None
    base = _base(kind, name, tmp_path)
    for field, info in model.model_fields.items():
        if not _numeric(info.annotation):
            continue
        lo, hi, lo_open, hi_open = bounds(info)
        for value in ([] if lo_open else [lo]) + ([] if hi_open else [hi]):
            params = {**base, field: value}
            if reg.validate_params(name, params):
                continue  # refused by a rule between fields (e.g. d_model % n_heads)
            reg.get(name)(**params)


EXTREMES = [
    ("tinylm", {"d_model": 1024, "n_layers": 1, "n_heads": 16, "batch_size": 1,
                "steps": 1}),
    ("tinylm", {"d_model": 16, "n_layers": 12, "n_heads": 16, "batch_size": 4, "lr": 1.0,
                "steps": 2, "kd_weight": 1.0}),
    ("tinylm", {"d_model": 8, "n_layers": 1, "n_heads": 1, "steps": 1, "early_stop": True}),
    ("linear", {"n_features": 2**20, "max_classes": 32, "word_ngrams": 5, "char_min": 1,
                "char_max": 10, "C": 1e6, "max_iter": 1}),
    ("lookup", {"analyzer": "word", "ngram_min": 10, "ngram_max": 10}),
]


@pytest.mark.parametrize(("name", "params"), EXTREMES, ids=[n for n, _ in EXTREMES])
def test_a_student_at_the_edges_of_its_ranges_trains_and_answers(name: str,
                                                                 params: dict[str, Any]) -> None:
    from extractbench.students import TrainPair

    assert STUDENTS.validate_params(name, params) == []
    student = STUDENTS.create(name, params)
    pairs = [TrainPair("What is 2 + 3?", "5"), TrainPair("What is 4 + 4?", "8")]
    report = student.fit(pairs, seed=0)
    assert report.examples == 2
    assert len(student.predict(["What is 1 + 1?"], max_tokens=4)) == 1


@pytest.mark.parametrize("name", ATTACKS.names())
def test_an_attack_samples_greedily_or_at_a_temperature_sampling_can_use(name: str) -> None:
    """Between 0 and 0.01 the logits divided by the temperature overflow to inf."""
    model = ATTACKS.params_model(name)
    assert model is not None and "temperature" in model.model_fields
    assert ATTACKS.validate_params(name, {"temperature": 0.0}) == []
    assert ATTACKS.validate_params(name, {"temperature": 0.01}) == []
    assert ATTACKS.validate_params(name, {"temperature": 1e-40}, "p") == [
        "p.temperature: must be 0 (greedy) or at least 0.01 (sampled), got 1e-40"]
