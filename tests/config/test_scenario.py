"""Scenario loading: valid files load, every problem is one line naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractbench.config.scenario import ScenarioError, load_scenario, missing_keys, scenario_hash

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
version: 1
name: t
endpoints:
  ref: {kind: reference, model: arith-ref}
tasks:
  arith: {family: arithmetic, params: {digits: 2, ops: ["+"]}, attack_pool: 100, heldout: 20}
attacks:
  rp: {name: random-pool}
budgets: [{queries: 10}, {tokens: 5000}]
students:
  s: {name: tinylm}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text))
    return err.value.lines


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")))
def test_shipped_scenarios_are_valid(path: Path) -> None:
    sc = load_scenario(path)
    assert sc.version == 1


def test_good_scenario_loads(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, GOOD))
    assert list(sc.endpoints) == ["ref"]
    assert [b.label() for b in sc.budgets] == ["q10", "t5000"]


def test_unknown_field_names_file_and_path(tmp_path: Path) -> None:
    lines = problems(tmp_path, GOOD.replace("model: arith-ref", "modle: arith-ref"))
    assert len(lines) == 1
    assert lines[0].startswith(f"{tmp_path / 's.yaml'}: endpoints.ref.modle: ")
    assert "spelling" in lines[0]


def test_every_problem_reported(tmp_path: Path) -> None:
    text = GOOD.replace("{queries: 10}", "{queries: 0}").replace("random-pool", "nope")
    lines = problems(tmp_path, text)
    assert any("budgets.0.queries" in line for line in lines)
    assert any("attacks.rp.name: unknown attack 'nope'" in line for line in lines)


def test_malformed_yaml_gives_line(tmp_path: Path) -> None:
    lines = problems(tmp_path, "version: 1\nname: [oops\n")
    assert len(lines) == 1 and "malformed YAML" in lines[0] and "line" in lines[0]


def test_bad_task_params(tmp_path: Path) -> None:
    lines = problems(tmp_path, GOOD.replace("ops: [\"+\"]", "ops: [\"/\"]"))
    assert lines and "tasks.arith.params" in lines[0]


def test_budget_needs_a_limit(tmp_path: Path) -> None:
    lines = problems(tmp_path, GOOD.replace("{queries: 10}", "{}"))
    assert any("budgets.0" in line for line in lines)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read file"):
        load_scenario(tmp_path / "absent.yaml")


def test_missing_key_env_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = GOOD.replace(
        "  ref: {kind: reference, model: arith-ref}",
        "  ref: {kind: reference, model: arith-ref}\n"
        "  vendor: {kind: remote, api: openai, base_url: 'https://example.invalid/v1', "
        "model: m, api_key_env: EB_TEST_KEY}",
    )
    monkeypatch.delenv("EB_TEST_KEY", raising=False)
    sc = load_scenario(write(tmp_path, text))
    assert missing_keys(sc) == {"vendor": "EB_TEST_KEY"}
    monkeypatch.setenv("EB_TEST_KEY", "x")
    assert missing_keys(sc) == {}


def test_hash_ignores_layout_not_content(tmp_path: Path) -> None:
    a = load_scenario(write(tmp_path, GOOD))
    b = load_scenario(write(tmp_path, GOOD.replace("\n", "\n\n")))
    c = load_scenario(write(tmp_path, GOOD.replace("queries: 10", "queries: 11")))
    assert scenario_hash(a) == scenario_hash(b) != scenario_hash(c)


# -- plugin parameters: names and types per field, values by building the plugin ------------


@pytest.mark.parametrize(("old", "new", "line"), [
    ("rp: {name: random-pool}", "rp: {name: random-pool, params: {batchh: 5}}",
     "attacks.rp.params.batchh: unknown parameter (random-pool takes: batch, max_tokens, "
     "patience, temperature)"),
    ("s: {name: tinylm}", "s: {name: tinylm, params: {d_modle: 64}}",
     "students.s.params.d_modle: unknown parameter (tinylm takes: batch_size, d_model, "),
    ("digits: 2,", "digitz: 2,",
     "tasks.arith.params.digitz: unknown parameter (arithmetic takes: digits, ops, "
     "reference_model, terms)"),
    ("model: arith-ref}",
     "model: arith-ref, defenses: [{name: logprob-guard, params: {hdie: true}}]}",
     "endpoints.ref.defenses.0.params.hdie: unknown parameter (logprob-guard takes: "),
])
def test_misspelt_parameter_is_one_line_naming_file_and_field(
        tmp_path: Path, old: str, new: str, line: str) -> None:
    assert old in GOOD
    lines = problems(tmp_path, GOOD.replace(old, new))
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{tmp_path / 's.yaml'}: {line}")


@pytest.mark.parametrize(("old", "new", "line"), [
    ("rp: {name: random-pool}", "rp: {name: random-pool, params: {batch: x}}",
     "attacks.rp.params.batch: expected an integer, got 'x'"),
    ("s: {name: tinylm}", "s: {name: tinylm, params: {epochs: many}}",
     "students.s.params.epochs: expected a number, got 'many'"),
    ("digits: 2,", "digits: '2',", "tasks.arith.params.digits: expected an integer, got '2'"),
    ("model: arith-ref}",
     "model: arith-ref, defenses: [{name: logprob-guard, params: {hide: 1}}]}",
     "endpoints.ref.defenses.0.params.hide: expected true or false, got 1"),
])
def test_mistyped_parameter_is_one_line_naming_file_and_field(
        tmp_path: Path, old: str, new: str, line: str) -> None:
    lines = problems(tmp_path, GOOD.replace(old, new))
    assert lines == [f"{tmp_path / 's.yaml'}: {line}"]


def test_parameter_problems_are_reported_with_schema_problems(tmp_path: Path) -> None:
    text = (GOOD.replace("{queries: 10}", "{queries: 0}")
            .replace("rp: {name: random-pool}", "rp: {name: random-pool, params: {batchh: 5}}"))
    lines = problems(tmp_path, text)
    assert any("budgets.0.queries" in line for line in lines)
    assert any("attacks.rp.params.batchh: unknown parameter" in line for line in lines)


@pytest.mark.parametrize(("old", "new", "line"), [
    ("rp: {name: random-pool}", "rp: {name: random-pool, params: {batch: 0}}",
     "attacks.rp.params: random-pool: batch must be at least 1"),
    ("s: {name: tinylm}", "s: {name: tinylm, params: {d_model: 66}}",
     "students.s.params: tinylm: d_model must be a multiple of n_heads"),
])
def test_bad_parameter_values_fail_at_validate(tmp_path: Path, old: str, new: str,
                                               line: str) -> None:
    lines = problems(tmp_path, GOOD.replace(old, new))
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path / 's.yaml'}: {line}"), lines
