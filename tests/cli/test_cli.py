"""The command line as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from extractbench.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_console_script_help() -> None:
    out = subprocess.run([sys.executable, "-m", "extractbench.cli.main", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for cmd in ("run", "serve", "validate", "schema", "list", "leaderboard", "train-reference",
                "proxy"):
        assert cmd in out


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "scenarios" / "ci.yaml")]) == 0
    assert "ok (" in capsys.readouterr().out


def test_validate_bad_file_exit_2_one_line_each(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: x\nendpoints: {r: {kind: reference, typo: 1}}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(line.startswith(f"{bad}: ") for line in err)
    assert any("endpoints.r.typo" in line for line in err)
    assert "Traceback" not in "\n".join(err)


def test_run_bad_scenario_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: [\n")
    assert main(["run", str(bad), "--results", str(tmp_path / "r")]) == 2
    assert "malformed YAML" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"endpoints", "tasks", "attacks", "budgets", "students"} <= set(schema["properties"])


@pytest.mark.parametrize(("kind", "name"), [("attacks", "random-pool"), ("students", "tinylm"),
                                            ("tasks", "arithmetic"), ("models", "arith-ref")])
def test_list(kind: str, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", kind]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.startswith(name))
    assert len(row.split(None, 1)) == 2  # a name and a description


def test_leaderboard_without_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["leaderboard", "--results", str(tmp_path)]) == 2
    assert "no runs found" in capsys.readouterr().err


def test_leaderboard_of_a_run_dir_that_does_not_exist_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["leaderboard", str(tmp_path / "no-such-run"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such records file" in err[0]
