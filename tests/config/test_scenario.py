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
    ("s: {name: tinylm}", "s: {name: tinylm, params: {lr: many}}",
     "students.s.params.lr: expected a number, got 'many'"),
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
     "attacks.rp.params.batch: must be an integer in [1, 1024], got 0"),
    ("s: {name: tinylm}", "s: {name: tinylm, params: {d_model: 66}}",
     "students.s.params.d_model: must be a multiple of n_heads (4), got 66"),
])
def test_bad_parameter_values_fail_at_validate(tmp_path: Path, old: str, new: str,
                                               line: str) -> None:
    lines = problems(tmp_path, GOOD.replace(old, new))
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path / 's.yaml'}: {line}"), lines


# -- strict types, finite numbers, safe names -----------------------------------------------


@pytest.mark.parametrize(("old", "new", "line"), [
    ("version: 1", "version: true", "version: expected 1, got true"),
    ("{queries: 10}", "{queries: true}", "budgets.0.queries: Input should be a valid integer"),
    ("{queries: 10}", "{queries: '10'}", "budgets.0.queries: Input should be a valid integer"),
    ("{queries: 10}", "{queries: 10.0}", "budgets.0.queries: Input should be a valid integer"),
    ("attack_pool: 100", "attack_pool: '100'", "tasks.arith.attack_pool: Input should be a valid "
     "integer"),
    ("rp: {name: random-pool}", "rp: {name: random-pool, concurrency: true}",
     "attacks.rp.concurrency: Input should be a valid integer"),
    ("name: t\n", "name: t\nseeds: [false]\n", "seeds.0: Input should be a valid integer"),
    ("name: t\n", "name: 5\n", "name: Input should be a valid string"),
])
def test_values_are_not_coerced(tmp_path: Path, old: str, new: str, line: str) -> None:
    assert old in GOOD
    lines = problems(tmp_path, GOOD.replace(old, new))
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path / 's.yaml'}: {line}"), lines


@pytest.mark.parametrize(("old", "new", "line"), [
    ("{tokens: 5000}", "{usd: .inf}", "budgets.1.usd: Input should be a finite number"),
    ("{tokens: 5000}", "{usd: .nan}", "budgets.1.usd: Input should be a finite number"),
    ("name: t\n", "name: t\nmax_usd: .inf\n", "max_usd: Input should be a finite number"),
    ("model: arith-ref}", "model: arith-ref, prices: {input_per_mtok: -.inf}}",
     "endpoints.ref.prices.input_per_mtok: Input should be a finite number"),
    ("rp: {name: random-pool}", "rp: {name: random-pool, params: {temperature: .inf}}",
     "attacks.rp.params: temperature: .inf is not a finite number"),
    ("s: {name: tinylm}", "s: {name: tinylm, params: {steps: 100000000000000000000}}",
     "students.s.params: steps: 100000000000000000000 does not fit in 64 bits"),
    ("name: t\n", "name: t\nseeds: [-1]\n", "seeds.0: Input should be greater than or equal to 0"),
    ("{queries: 10}", "{queries: 10000000000}", "budgets.0.queries: Input should be less than"),
    ("attack_pool: 100", "attack_pool: 100000000",
     "tasks.arith.attack_pool: Input should be less than or equal to 100000"),
])
def test_numbers_are_finite_and_in_range(tmp_path: Path, old: str, new: str, line: str) -> None:
    assert old in GOOD
    lines = problems(tmp_path, GOOD.replace(old, new))
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path / 's.yaml'}: {line}"), lines


@pytest.mark.parametrize("name", ["../", "..", "a/b", "/etc", ".hidden", "a..b", "a__b", "a ",
                                  "x" * 41, "ré", "a\nb", "\u202eb", ""])
def test_an_endpoint_name_that_is_not_a_safe_file_name_is_refused(tmp_path: Path,
                                                                   name: str) -> None:
    quoted = name.replace("\n", "\\n").replace("\u202e", "\\u202e")
    lines = problems(tmp_path, GOOD.replace("  ref: {kind", f'  "{quoted}": {{kind'))
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{tmp_path / 's.yaml'}: endpoints.")
    assert "cannot be a name (it becomes part of file names and cell ids: use 1-40" in lines[0]
    assert "\n" not in lines[0] and "\u202e" not in lines[0]


def test_the_dot_dot_slash_endpoint_line(tmp_path: Path) -> None:
    lines = problems(tmp_path, GOOD.replace("  ref: {kind", '  "../": {kind'))
    assert lines == [
        f"{tmp_path / 's.yaml'}: endpoints.'../': '../' cannot be a name (it becomes part of "
        "file names and cell ids: use 1-40 letters, digits, '.', '_' or '-', starting and "
        "ending with a letter or digit, without '..' or '__')"]


@pytest.mark.parametrize(("old", "new", "where"), [
    ("name: t\n", "name: ../t\n", "name"),
    ("  arith: {family", "  a/b: {family", "tasks.'a/b'"),
    ("  rp: {name", "  ..: {name", "attacks.'..'"),
    ("  s: {name", "  _s: {name", "students.'_s'"),
])
def test_every_name_that_becomes_a_file_name_is_checked(tmp_path: Path, old: str, new: str,
                                                        where: str) -> None:
    lines = problems(tmp_path, GOOD.replace(old, new))
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path / 's.yaml'}: {where}: "), lines


def test_names_that_differ_only_in_case_are_refused(tmp_path: Path) -> None:
    text = GOOD.replace("  s: {name: tinylm}", "  s: {name: tinylm}\n  S: {name: lookup}")
    assert any("'s' and 'S' differ only in case" in line for line in problems(tmp_path, text))


@pytest.mark.parametrize(("old", "new", "line"), [
    ("name: t\n", 'name: t\ndescription: "a\\u202eb"\n',
     "description: contains the control character U+202E"),
    ("rp: {name: random-pool}", 'rp: {name: random-pool, params: {temperature: "\\x01"}}',
     "attacks.rp.params: temperature: contains the control character U+0001"),
    ("digits: 2", "digits: 2021-01-01",
     "tasks.arith.params: digits: a date is not allowed here"),
    ("model: arith-ref}", "model: nope}",
     "endpoints.ref.model: unknown reference model 'nope' (known: arith-cot-ref, arith-ref, "),
    ("model: arith-ref}", "model: arith-ref}\n  v: {kind: remote, api: openai, base_url: "
     "'file:///etc', model: m, api_key_env: K}",
     "endpoints.v.base_url: 'file:///etc' is not an http(s) URL"),
    ("model: arith-ref}", "model: arith-ref}\n  v: {kind: remote, api: openai, base_url: "
     "'https://x.invalid', model: m, api_key_env: 'A-B'}",
     "endpoints.v.api_key_env: 'A-B' is not an environment variable name"),
    ("name: t\n", "name: t\nseeds: [0, 0]\n", "(top level): seeds: a seed is listed twice"),
])
def test_text_and_plugin_values_are_plain(tmp_path: Path, old: str, new: str, line: str) -> None:
    assert old in GOOD
    lines = problems(tmp_path, GOOD.replace(old, new))
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path / 's.yaml'}: {line}"), lines


def test_a_failure_inside_validation_is_one_line_not_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import extractbench.config.scenario as module

    def broken(*args: object) -> list[str]:
        raise KeyError("boom")

    monkeypatch.setattr(module, "_plugin_problems", broken)
    assert problems(tmp_path, GOOD) == [
        f"{tmp_path / 's.yaml'}: internal error while validating: KeyError: 'boom' "
        "(please report it)"]


def test_a_plugin_that_raises_something_unexpected_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from extractbench.students import STUDENTS

    def exploding(**params: object) -> None:
        raise ZeroDivisionError("division by zero")

    entry = STUDENTS.entry("tinylm")
    monkeypatch.setitem(STUDENTS._entries, "tinylm",
                        type(entry)(entry.name, exploding, entry.description, entry.params))
    assert problems(tmp_path, GOOD) == [
        f"{tmp_path / 's.yaml'}: students.s.params: ZeroDivisionError: division by zero "
        "(see `extractbench list students`)"]


def test_the_hash_of_the_shipped_scenarios_is_unchanged() -> None:
    """The hash is the resume key: stricter validation must not change it. (Pinned again when
    the tinylm recipes moved to a fixed number of steps and ci.yaml was rebuilt on the
    protocol of issue 13, which change what the files say; and when ci.yaml's ranking named the
    task it ranks on and curves.yaml was added; and when ci.yaml ran 50 benign users in
    cohorts and hydra.yaml was added; and when ci.yaml ran 6 heavy and 6 bursty users and
    ranked against stealth-adaptive, its light users mixing in other tasks.)"""
    hashes = {p.name: scenario_hash(load_scenario(p))[:16]
              for p in sorted((ROOT / "scenarios").glob("*.yaml"))}
    assert hashes == {
        "adaptive.yaml": "a5712a2ef20c88b1", "adaptive-vote.yaml": "0715b9b48bb77eac",
        "antidistill.yaml": "a992e395439f9fa3",
        "ci.yaml": "1d0cc598c7982037",
        "curves.yaml": "d84287e4134710a4",
        "defenses.yaml": "05567abdb4e30e91",
        "direction-random.yaml": "5451e23b0c8261d4",
        "direction-reasoning.yaml": "52c660dd7a1aec34",
        "direction-soft-labels.yaml": "5b609ea8e93c15c5",
        "families.yaml": "e38dcfb488f54bc9", "hydra.yaml": "265dfe7b5b47c273",
        "standard.yaml": "0baf2426f9ef385e",
        "students.yaml": "26dde6a07f1ef95e", "vendors.yaml": "2a4154d17ec49a6c",
    }
