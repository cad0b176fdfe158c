"""Exit codes a CI can trust: each outcome of ``extractbench run`` has its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractbench.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_CELL_ERRORS,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SKIPPED,
)
from extractbench.cli.main import main
from extractbench.cli.run import exit_code
from extractbench.testing.records import cell_record

REMOTE_ONLY = """
version: 1
name: remote-only
endpoints:
  vendor: {kind: remote, api: openai, base_url: 'http://127.0.0.1:9/v1', model: m,
           api_key_env: EB_TEST_UNSET_KEY}
tasks:
  arith: {family: arithmetic, params: {digits: 2, ops: ["+"]}, attack_pool: 40, heldout: 20}
attacks:
  rp: {name: random-pool}
budgets: [{queries: 5}]
students:
  s: {name: lookup}
seeds: [0]
"""


def test_the_codes_are_distinct() -> None:
    codes = [EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CELL_ERRORS, EXIT_SKIPPED, 130]
    assert len(set(codes)) == len(codes)


def test_an_error_outranks_a_gate_which_outranks_a_skip() -> None:
    ok = cell_record()
    error = cell_record(transfer=None, status="error", error="boom")
    skipped = cell_record(transfer=None, status="skipped", error="key not set")
    assert exit_code([ok], [], allow_skipped=False) == EXIT_OK
    assert exit_code([ok, skipped], [], allow_skipped=False) == EXIT_SKIPPED
    assert exit_code([ok, skipped], [], allow_skipped=True) == EXIT_OK
    assert exit_code([ok, skipped], ["gate"], allow_skipped=True) == EXIT_FAILED
    assert exit_code([ok, error, skipped], ["gate"], allow_skipped=True) == EXIT_CELL_ERRORS


def test_a_run_whose_every_cell_is_skipped_does_not_pass(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("EB_TEST_UNSET_KEY", raising=False)
    path = tmp_path / "remote.yaml"
    path.write_text(REMOTE_ONLY)
    results = tmp_path / "r"
    assert main(["run", str(path), "--results", str(results), "--quiet"]) == EXIT_SKIPPED
    assert "--allow-skipped" in capsys.readouterr().err
    assert main(["run", str(path), "--results", str(results), "--quiet",
                 "--allow-skipped"]) == EXIT_OK


@pytest.mark.parametrize("run_id", ["../escape", "..", "a/b", ".hidden", "x\ny", ""])
def test_a_run_id_that_is_not_a_plain_name_is_refused(
        tmp_path: Path, run_id: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("EB_TEST_UNSET_KEY", raising=False)
    path = tmp_path / "remote.yaml"
    path.write_text(REMOTE_ONLY)
    results = tmp_path / "deep" / "r"
    assert main(["run", str(path), "--results", str(results), "--quiet",
                 "--run-id", run_id]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("extractbench: --run-id:")
    assert not (results / "escape").exists()  # where runs/../escape would have gone
    assert [p.name for p in tmp_path.rglob("*")] == ["remote.yaml"]  # nothing written at all
