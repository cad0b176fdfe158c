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
from extractbench.registry import Registry
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
        'temperature': 0.0, 'max_tokens': None, 'patience': 3},
    ('attack', 'synthetic'): {'mode': 'template', 'recombine': 0.25, 'batch': 32,
        'instruct_share': 0.5, 'probe': 8, 'min_yield': 0.25, 'temperature': 0.0,
        'max_tokens': None, 'patience': 3},
    ('student', 'hf-sft'): {'model_path': 'REQUIRED', 'lora_r': 8, 'lora_alpha': 16,
        'lora_dropout': 0.0, 'target_modules': None, 'lr': 0.0002, 'epochs': 3.0, 'batch_size': 8,
        'min_steps': 10, 'max_steps': 1000, 'max_length': 512, 'device': 'auto',
        'chat_template': True},
    ('student', 'linear'): {'n_features': 65536, 'word_ngrams': 2, 'char_min': 3, 'char_max': 5,
        'C': 10.0, 'max_iter': 200, 'max_classes': 200},
    ('student', 'lookup'): {'analyzer': 'char_wb', 'ngram_min': 2, 'ngram_max': 4},
    ('student', 'tinylm'): {'d_model': 64, 'n_layers': 2, 'n_heads': 4, 'batch_size': 64,
        'lr': 0.003, 'epochs': 30.0, 'min_steps': 50, 'max_steps': 1000, 'kd_weight': 0.5},
    ('task', 'arithmetic'): {'digits': 2, 'ops': ('+',), 'terms': 2,
        'reference_model': 'arith-cot-ref'},
    ('task', 'cipher'): {'min_len': 4, 'max_len': 6, 'reference_model': 'cipher-ref'},
    ('task', 'classification'): {'products': 120, 'reference_model': 'classify-ref'},
    ('task', 'jsonl'): {'path': 'REQUIRED', 'scorer': 'exact', 'max_answer_tokens': None,
        'reference_model': '', 'reasoning_suffix': None, 'reasoning_max_tokens': 256},
    ('task', 'knowledge'): {'entities': 60, 'reference_model': 'knowledge-ref'},
    ('defense', 'detector'): {'tests': ('prada', 'duplicate', 'volume'), 'action': 'block',
        'min_queries': 50, 'test_every': 10, 'prada_delta': 0.9, 'prada_window': 500,
        'dup_distance': 0.05, 'dup_fraction': 0.9, 'dup_window': 100, 'volume_max': 300,
        'volume_window_s': 60.0, 'volume_total': None, 'throttle_s': 5.0, 'history': 1000,
        'ngram': 3, 'dim': 256},
    ('defense', 'logprob-guard'): {'hide': False, 'max_top_logprobs': None, 'round_to': None,
        'noise_std': 0.0, 'consistent_noise': True, 'ignore_logit_bias': True, 'seed': 0},
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
