"""The plugin registries: every registered attack, student, task family and defense declares
its parameters as a pydantic model whose defaults are the plugin's own; ``create`` and
``validate_params`` check parameters against it."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pytest

from extractbench.attacks import ATTACKS
from extractbench.defenses import DEFENSES
from extractbench.errors import ExtractbenchError
from extractbench.registry import ParamsError, PluginParams, Registry, UnknownNameError
from extractbench.students import STUDENTS
from extractbench.tasks import TASKS

REGISTRIES: dict[str, Registry[Any]] = {
    "attack": ATTACKS, "student": STUDENTS, "task": TASKS, "defense": DEFENSES,
}
REQUIRED = "REQUIRED"

# The constructors' defaults when parameters became typed (generated from the constructor
# signatures of that commit). The benchmark's numbers depend on them: a change here is a
# change of the benchmark, not a refactor.
DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {
    ('attack', 'active'): {'rounds': 4, 'first': 0.25, 'candidates': 512, 'coverage_weight': 0.5,
        'probe_steps': 100, 'probe_d_model': 32, 'batch': 32, 'temperature': 0.0,
        'max_tokens': None, 'patience': 3},
    ('attack', 'cot-coercion'): {'suffix': None, 'strip_format': None, 'max_tokens': None,
        'train_on': 'question', 'probe': 16, 'min_reasoning': 0.2, 'fallback': 'bare', 'batch': 32,
        'temperature': 0.0, 'patience': 3},
    ('attack', 'logprob-harvest'): {'top_logprobs': 5, 'probe': 16, 'batch': 32,
        'temperature': 0.0, 'max_tokens': None, 'patience': 3},
    ('attack', 'random-pool'): {'temperature': 0.0, 'max_tokens': None, 'batch': 32,
        'patience': 3},
    ('attack', 'stealth'): {'paraphrase': 0.5, 'benign_share': 0.2, 'per_key_rpm': None,
        'jitter': 0.5, 'max_per_key': None, 'slowdown': 2.0, 'per_key_batch': 8,
        'temperature': 0.0, 'max_tokens': None, 'patience': 3, 'adapt': False},
    ('attack', 'synthetic'): {'mode': 'template', 'recombine': 0.25, 'batch': 32,
        'instruct_share': 0.5, 'probe': 8, 'min_yield': 0.25, 'temperature': 0.0,
        'max_tokens': None, 'patience': 3},
    ('attack', 'vote'): {'asks': 3, 'vary': 'wording', 'temperature': 0.0, 'max_tokens': None,
        'batch': 16, 'patience': 3},
    ('student', 'hf-sft'): {'model_path': 'REQUIRED', 'lora_r': 8, 'lora_alpha': 16,
        'lora_dropout': 0.0, 'target_modules': None, 'lr': 0.0002, 'batch_size': 8,
        'steps': 200, 'max_length': 512, 'device': 'auto', 'chat_template': True},
    ('student', 'linear'): {'n_features': 65536, 'word_ngrams': 2, 'char_min': 3, 'char_max': 5,
        'C': 10.0, 'max_iter': 200, 'max_classes': 200},
    ('student', 'lookup'): {'analyzer': 'char_wb', 'ngram_min': 2, 'ngram_max': 4},
    ('student', 'tinylm'): {'d_model': 64, 'n_layers': 2, 'n_heads': 4, 'batch_size': 64,
        'lr': 0.003, 'steps': 800, 'early_stop': False, 'kd_weight': 0.5},
    ('task', 'arithmetic'): {'digits': 2, 'ops': ('+',), 'terms': 2,
        'reference_model': 'arith-cot-ref'},
    ('task', 'cipher'): {'min_len': 4, 'max_len': 6, 'reference_model': 'cipher-ref'},
    ('task', 'classification'): {'products': 120, 'reference_model': 'classify-ref'},
    ('task', 'jsonl'): {'path': 'REQUIRED', 'scorer': 'exact', 'max_answer_tokens': None,
        'reference_model': '', 'reasoning_suffix': None, 'reasoning_max_tokens': 256},
    ('task', 'knowledge'): {'entities': 60, 'reference_model': 'knowledge-ref'},
    ('defense', 'antidistill'): {'reference_task': 'REQUIRED', 'lam': 1.0, 'eps': 0.01,
        'seed': 0, 'proxy_d_model': 32, 'proxy_steps': 300},
    ('defense', 'detector'): {'tests': ('prada', 'duplicate', 'volume'), 'action': 'block',
        'min_queries': 50, 'test_every': 10, 'prada_delta': 0.9, 'prada_window': 500,
        'dup_distance': 0.05, 'dup_fraction': 0.9, 'dup_window': 100, 'volume_max': 300,
        'volume_window_s': 60.0, 'volume_total': None, 'throttle_s': 5.0, 'history': 1000,
        'ngram': 3, 'dim': 256},
    ('defense', 'hydra'): {'content_min': 0.9, 'rate_ratio': 2.0, 'overlap_min': 0.5,
        'min_queries': 10, 'min_cluster': 2, 'sweep_s': 3600.0, 'ngram': 3, 'dim': 256},
    ('defense', 'logprob-guard'): {'hide': False, 'max_top_logprobs': None, 'round_to': None,
        'noise_std': 0.0, 'consistent_noise': True, 'ignore_logit_bias': True, 'seed': 0,
        'reverse_sigmoid_beta': 0.0, 'reverse_sigmoid_gamma': 0.1},
    ('defense', 'misinformation'): {'threshold': 0.2, 'reference_prompts': None,
        'reference_file': None, 'reference_task': None, 'learn_first': 0, 'abstract_digits': True,
        'ngram': 3, 'dim': 256, 'close_tag': '</reasoning>', 'seed': 0},
    ('defense', 'perturb'): {'temperature': None, 'poison_fraction': 0.0, 'scope': 'all',
        'close_tag': '</reasoning>', 'seed': 0},
    ('defense', 'rate-limit'): {'requests_per_minute': None, 'request_burst': None,
        'tokens_per_minute': None, 'token_burst': None, 'requests_per_day': None,
        'tokens_per_day': None, 'day_s': 86400.0},
    ('defense', 'reasoning-guard'): {'mode': 'strip', 'open_tag': '<reasoning>',
        'close_tag': '</reasoning>', 'summary_chars': 40},
    ('defense', 'watermark'): {'key': 15485863, 'gamma': 0.5, 'delta': 2.0},
}


def constructor(obj: Any) -> Any:
    """The class a registered object builds: the object itself, or a factory's return type."""
    if inspect.isclass(obj):
        return obj
    return typing.get_type_hints(obj)["return"]


def signature_defaults(kind: str, obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, p in inspect.signature(constructor(obj)).parameters.items():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        if kind == "task" and name in ("seed", "sizes"):
            continue
        out[name] = REQUIRED if p.default is p.empty else p.default
    return out


def typed(d: dict[str, Any]) -> dict[str, tuple[type, Any]]:
    return {k: (type(v), v) for k, v in d.items()}


PLUGINS = [(kind, name) for kind, reg in REGISTRIES.items() for name in reg.names()]


def test_every_plugin_is_in_the_defaults_table() -> None:
    assert sorted(PLUGINS) == sorted(DEFAULTS)


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_constructor_defaults_did_not_change(kind: str, name: str) -> None:
    obj = REGISTRIES[kind].get(name)
    assert typed(signature_defaults(kind, obj)) == typed(DEFAULTS[(kind, name)])


# -- the parameter models -------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_every_plugin_declares_a_strict_params_model(kind: str, name: str) -> None:
    model = REGISTRIES[kind].params_model(name)
    assert model is not None and issubclass(model, PluginParams)
    assert model.model_config.get("extra") == "forbid"
    assert model.model_config.get("frozen") is True
    for field, info in model.model_fields.items():
        assert info.description, f"{kind} {name}: {field} has no description"


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_params_defaults_are_the_constructor_defaults(kind: str, name: str) -> None:
    model = REGISTRIES[kind].params_model(name)
    assert model is not None
    declared = {f: REQUIRED if info.is_required() else info.get_default()
                for f, info in model.model_fields.items()}
    assert typed(declared) == typed(DEFAULTS[(kind, name)])
    assert typed(declared) == typed(signature_defaults(kind, REGISTRIES[kind].get(name)))


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_the_defaults_validate(kind: str, name: str) -> None:
    """A model's own defaults pass its (strict) checks, given explicitly."""
    model = REGISTRIES[kind].params_model(name)
    assert model is not None
    given = {f: info.get_default() for f, info in model.model_fields.items()
             if not info.is_required()}
    given.update({"path": "t.jsonl"} if name == "jsonl" else {})
    given.update({"model_path": "/m"} if name == "hf-sft" else {})
    given.update({"reference_task": {"family": "classification"}} if name == "antidistill"
                 else {})
    assert REGISTRIES[kind].validate_params(name, given) == []


# -- validate_params and create -------------------------------------------------------------


def test_unknown_parameter_names_the_field_and_the_allowed_ones() -> None:
    assert ATTACKS.validate_params("random-pool", {"batchh": 5}, "attacks.rp.params") == [
        "attacks.rp.params.batchh: unknown parameter (random-pool takes: batch, max_tokens, "
        "patience, temperature)"]


@pytest.mark.parametrize(("reg", "name", "params", "problem"), [
    (ATTACKS, "random-pool", {"batch": "x"}, "batch: expected an integer, got 'x'"),
    (ATTACKS, "random-pool", {"batch": 5.0}, "batch: expected an integer, got 5.0"),
    (ATTACKS, "random-pool", {"temperature": "0.5"}, "temperature: expected a number, got '0.5'"),
    (ATTACKS, "random-pool", {"max_tokens": "64"},
     "max_tokens: expected an integer or null, got '64'"),
    (ATTACKS, "synthetic", {"mode": "magic"},
     "mode: expected one of 'template', 'self-instruct', got 'magic'"),
    (STUDENTS, "tinylm", {"d_model": True}, "d_model: expected an integer, got True"),
    (STUDENTS, "hf-sft", {}, "model_path: missing required parameter"),
    (TASKS, "arithmetic", {"ops": "+"}, "ops: expected a list (each one of '+', '-', '*'), "
     "got '+'"),
    (DEFENSES, "logprob-guard", {"hide": "yes"}, "hide: expected true or false, got 'yes'"),
    (DEFENSES, "detector", {"tests": ["prada", "nope"]}, "tests: expected a list"),
])
def test_mistyped_parameters_are_one_line_each(reg: Registry[Any], name: str,
                                               params: dict[str, Any], problem: str) -> None:
    problems = reg.validate_params(name, params)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_every_problem_is_reported() -> None:
    problems = ATTACKS.validate_params("random-pool", {"batch": "x", "patienc": 2, "tmp": 1})
    assert sorted(p.split(":")[0] for p in problems) == ["batch", "patienc", "tmp"]


def test_fine_params_have_no_problems_and_ints_are_numbers() -> None:
    assert ATTACKS.validate_params("random-pool", {"temperature": 1, "batch": 8}) == []
    assert TASKS.validate_params("arithmetic", {"digits": 2, "ops": ["+", "-"]}) == []
    assert ATTACKS.validate_params("random-pool", None) == []


def test_create_builds_what_get_builds() -> None:
    params = {"batch": 8, "temperature": 0}
    made = ATTACKS.create("random-pool", params)
    direct = ATTACKS.get("random-pool")(**params)
    assert vars(made) == vars(direct)
    assert type(made.temperature) is type(direct.temperature)  # values passed as given
    task = TASKS.create("arithmetic", {"digits": 1}, 0, {"heldout": 5, "attack_pool": 5})
    assert [i.prompt for i in task.split("heldout")] == [
        i.prompt for i in TASKS.get("arithmetic")(0, {"heldout": 5, "attack_pool": 5},
                                                  digits=1).split("heldout")]
    assert type(DEFENSES.create("watermark", {"delta": 1.0})).__name__ == "Watermark"


def test_create_raises_params_error_before_building() -> None:
    with pytest.raises(ParamsError) as info:
        ATTACKS.create("random-pool", {"batchh": 5})
    assert str(info.value) == ("attack random-pool: params.batchh: unknown parameter "
                               "(random-pool takes: batch, max_tokens, patience, temperature)")
    assert isinstance(info.value, ValueError) and isinstance(info.value, ExtractbenchError)
    with pytest.raises(ValueError, match=r"params\.batch: must be an integer in \[1, 1024\]"):
        ATTACKS.create("random-pool", {"batch": 0})


def test_get_still_builds_from_raw_params() -> None:
    """``REG.get(name)(**params)`` is unchecked, as it always was."""
    with pytest.raises(TypeError):
        ATTACKS.get("random-pool")(batchh=5)


def test_user_facing_errors_share_the_base_and_keep_theirs() -> None:
    from extractbench.defenses import DefenseConfigError

    with pytest.raises(UnknownNameError) as info:
        ATTACKS.get("no-such")
    assert isinstance(info.value, KeyError) and isinstance(info.value, ExtractbenchError)
    assert issubclass(DefenseConfigError, ValueError)
    assert issubclass(DefenseConfigError, ExtractbenchError)
    assert issubclass(ParamsError, ValueError) and issubclass(ParamsError, ExtractbenchError)


def test_a_plugin_without_a_model_is_checked_by_its_signature() -> None:
    reg: Registry[Any] = Registry("widget")

    @reg.register("w")
    def make(*, size: int = 1) -> int:
        """A widget."""
        return size

    @reg.register("free")
    def make_free(**params: Any) -> int:
        """Takes anything."""
        return 0

    assert reg.validate_params("w", {"sise": 2}) == ["sise: unknown parameter (w takes: size)"]
    assert reg.validate_params("free", {"anything": 2}) == []
    assert reg.entry("w").params_help() == ["    (parameters not declared)"]
    with pytest.raises(ParamsError):
        reg.create("w", {"sise": 2})
    assert reg.create("w", {"size": 3}) == 3


# -- help -----------------------------------------------------------------------------------


def test_params_help_shows_name_type_default_and_description() -> None:
    lines = ATTACKS.entry("random-pool").params_help()
    assert "    batch (int, default 32): prompts in flight per round (>= 1)" in lines
    assert any(line.startswith("    max_tokens (int | null, default null): ") for line in lines)
    assert any(line.startswith("    path (str, required): ")
               for line in TASKS.entry("jsonl").params_help())
    assert any(line.startswith("    mode ('strip' | 'summary', default 'strip'): ")
               for line in DEFENSES.entry("reasoning-guard").params_help())


@pytest.mark.parametrize("kind", ["attacks", "students", "tasks", "defenses"])
def test_list_shows_each_plugins_parameters(kind: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from extractbench.cli.main import main

    assert main(["list", kind]) == 0
    lines = capsys.readouterr().out.splitlines()
    reg = REGISTRIES[kind.removesuffix("s")]
    for entry in reg.entries():
        at = lines.index(next(ln for ln in lines if ln.split()[:1] == [entry.name]))
        assert lines[at + 1 : at + 1 + len(entry.params_help())] == entry.params_help()
    if kind == "attacks":
        assert "    batch (int, default 32): prompts in flight per round (>= 1)" in lines
