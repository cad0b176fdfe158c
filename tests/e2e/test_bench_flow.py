"""The pytest-benchmark flow a user follows to compare configurations over time: scenario cells
run through the extractbench pytest plugin with ``--benchmark-json``, ``--benchmark-autosave``
and ``--benchmark-compare``, the extraction metrics travelling in ``extra_info``.

The inner sessions run in-process (pytester), against the shipped ``arith-ref`` reference
teacher with a 5-step student, so each takes a few seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from extractbench.reference.teachers import model_path

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = """\
version: 1
name: flow
endpoints:
  reference: {kind: reference, model: arith-ref}
tasks:
  arithmetic:
    family: arithmetic
    params: {digits: 2, ops: ["+"]}
    attack_pool: 50
    heldout: 20
    benign: 10
attacks:
  random-pool: {name: random-pool}
budgets:
  - {queries: 5}
  - {queries: 10}
students:
  tinylm: {name: tinylm, params: {d_model: 32, n_layers: 1, steps: 5}}
seeds: [0]
"""

BENCH = """\
def test_cell(extractbench_cell, benchmark):
    extractbench_cell.run(benchmark)
"""

needs_weights = pytest.mark.skipif(
    not model_path("arith-ref").exists(),
    reason="reference weights arith-ref.safetensors missing "
           "(run `extractbench train-reference arith-ref`)",
)


@pytest.fixture(autouse=True, scope="module")
def _preload() -> None:
    """Import what the inner sessions import. Pytester restores ``sys.modules`` after each
    in-process run, and a C extension (numpy.fft, pulled in through scipy) cannot be loaded
    a second time in one process."""
    import anthropic  # noqa: F401
    import fastapi  # noqa: F401
    import openai  # noqa: F401
    import uvicorn  # noqa: F401

    import extractbench.measure.runner
    import extractbench.report.leaderboard
    import extractbench.report.plots
    import extractbench.serving  # noqa: F401
    from extractbench.attacks import ATTACKS
    from extractbench.defenses import DEFENSES
    from extractbench.students import STUDENTS, TrainPair
    from extractbench.tasks import TASKS

    for registry in (ATTACKS, DEFENSES, STUDENTS, TASKS):
        registry.entries()
    student = STUDENTS.get("tinylm")(d_model=32, n_layers=1, steps=1)
    student.fit([TrainPair(prompt="1 + 2?", response="3")], seed=0)  # loads torch._dynamo


def _setup(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", flow=SCENARIO)
    pytester.makepyfile(test_bench=BENCH)


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--extractbench-scenario", "flow.yaml",
                              "--extractbench-results-dir", "results",
                              "-p", "no:cacheprovider", *args)


CELLS = {"reference/arithmetic/random-pool/q5/tinylm/s0",
         "reference/arithmetic/random-pool/q10/tinylm/s0"}


@needs_weights
def test_json_autosave_then_compare(pytester: pytest.Pytester) -> None:
    _setup(pytester)
    first = _run(pytester, "--benchmark-json=bench.json", "--benchmark-autosave")
    first.assert_outcomes(passed=2)

    # --benchmark-json: one benchmark per cell, the extraction metrics in extra_info
    data = json.loads((pytester.path / "bench.json").read_text())
    cells = {b["extra_info"]["cell_id"]: b for b in data["benchmarks"]}
    assert len(data["benchmarks"]) == 2 and set(cells) == CELLS
    for cell_id, bench in cells.items():
        info = bench["extra_info"]
        assert bench["param"] == cell_id  # the test id is the cell id
        assert info["status"] == "ok"
        assert 0 < info["queries"] <= int(cell_id.split("/")[3][1:])
        for key in ("transfer", "transfer_low", "transfer_high", "teacher_score",
                    "student_score", "base_score", "fidelity", "scenario_hash", "git_sha"):
            assert key in info, key
        assert info["transfer_low"] <= info["transfer"] <= info["transfer_high"]
        assert bench["stats"]["rounds"] == 1 and bench["stats"]["mean"] > 0
    assert (pytester.path / "results" / "leaderboard.md").exists()
    assert (pytester.path / "results" / "leaderboard.html").exists()

    # --benchmark-autosave stored the same, with the metrics
    saved = sorted((pytester.path / ".benchmarks").glob("*/0001_*.json"))
    assert len(saved) == 1
    stored = json.loads(saved[0].read_text())["benchmarks"]
    assert {b["extra_info"]["cell_id"] for b in stored} == CELLS
    assert all("transfer" in b["extra_info"] for b in stored)

    # --benchmark-compare: a second run lists itself next to the saved one
    second = _run(pytester, "--benchmark-compare")
    second.assert_outcomes(passed=2)
    assert "Comparing against benchmarks from: " in second.stderr.str()
    table = second.stdout.str()
    assert table.count("(NOW)") == 2 and table.count("(0001_") == 2


def test_vendor_cells_skip_with_one_line_each(pytester: pytest.Pytester,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    shutil.copy(ROOT / "scenarios" / "vendors.yaml", pytester.path / "vendors.yaml")
    pytester.makepyfile(test_bench=BENCH)
    args = ("--extractbench-scenario", "vendors.yaml", "--extractbench-results-dir", "results",
            "-p", "no:cacheprovider", "-rs")
    offline = pytester.runpytest(*args)
    offline.assert_outcomes(skipped=15)
    offline.stdout.fnmatch_lines(["SKIPPED *openai-small* is a live vendor call (pass "
                                  "--extractbench-run-live and set OPENAI_API_KEY)"])
    live = pytester.runpytest(*args, "--extractbench-run-live")
    live.assert_outcomes(skipped=15)
    live.stdout.fnmatch_lines(["SKIPPED *environment variable ANTHROPIC_API_KEY is not set*"])
    board = (pytester.path / "results" / "leaderboard.md").read_text()
    assert "cells: 0 ok, 15 skipped or failed" in board
