"""pytest plugin (entry point ``pytest11``): scenario cells as parametrised test items.

In any repository with extractbench installed, a test that asks for the ``extractbench_cell``
fixture is run once per cell of the chosen scenario(s)::

    def test_cell(extractbench_cell, benchmark):
        extractbench_cell.run(benchmark)

Options, all prefixed like pytest-benchmark's so they cannot clash with a project's own:
``--extractbench-scenario PATH`` (repeatable; default: the ini value ``extractbench_scenario``),
``--extractbench-results-dir DIR`` (default ``results``), ``--extractbench-run-live`` (allow
calls to remote vendor endpoints; without it their cells skip). Each cell is timed with
pytest-benchmark (``benchmark.pedantic``, one round) with its metrics in ``extra_info``; the
scenario's gates are asserted; the leaderboard is written at the end of the session.

The plugin is inert in a session that asks for no ``extractbench_cell``: it loads no scenario,
imports nothing heavy and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from extractbench.config.plan import Cell
    from extractbench.config.scenario import Scenario
    from extractbench.logs.records import CellRecord
    from extractbench.measure.runner import Runner


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("extractbench", "extraction benchmark scenarios")
    group.addoption("--extractbench-scenario", action="append", default=None, metavar="PATH",
                    dest="extractbench_scenario",
                    help="scenario YAML to run (repeatable; default: ini extractbench_scenario)")
    group.addoption("--extractbench-results-dir", default="results", metavar="DIR",
                    dest="extractbench_results_dir",
                    help="where runs and the leaderboard are written (default: results)")
    group.addoption("--extractbench-run-live", action="store_true", default=False,
                    dest="extractbench_run_live",
                    help="allow cells against remote (vendor) endpoints; they cost money")
    parser.addini("extractbench_scenario", "default scenario file(s) for extractbench cells",
                  type="args", default=[])


@dataclass
class _ScenarioRun:
    path: Path
    scenario: Scenario
    runner: Runner | None = None
    records: list[CellRecord] | None = None


class _State:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.runs: dict[Path, _ScenarioRun] = {}

    def scenario_paths(self) -> list[Path]:
        opt = self.config.getoption("extractbench_scenario")
        if opt:
            return [Path(p) for p in opt]
        return [self.config.rootpath / p for p in self.config.getini("extractbench_scenario")]

    def load(self, path: Path) -> _ScenarioRun:
        from extractbench.config.scenario import ScenarioError, load_scenario

        if path not in self.runs:
            try:
                self.runs[path] = _ScenarioRun(path, load_scenario(path))
            except ScenarioError as exc:
                raise pytest.UsageError("\n".join(exc.lines)) from None
        return self.runs[path]

    def runner(self, run: _ScenarioRun) -> Runner:
        from extractbench.config.costs import SpendError, check_spend
        from extractbench.measure.runner import RunError, Runner

        if run.runner is None:
            try:
                check_spend(run.scenario)
            except SpendError as exc:
                raise pytest.UsageError(str(exc)) from None
            results = Path(self.config.getoption("extractbench_results_dir"))
            runner = Runner(run.scenario, run.path, results)
            try:
                runner.__enter__()
            except RunError as exc:
                pytest.fail(str(exc), pytrace=False)
            run.runner, run.records = runner, []
        return run.runner

    def finish(self) -> None:
        from extractbench.report.leaderboard import write_leaderboard

        records = []
        rankings = [run.scenario.ranking for run in self.runs.values()
                    if run.runner is not None]
        for run in self.runs.values():
            if run.runner is not None:
                run.runner.__exit__(None, None, None)
                records.extend(run.records or [])
        if records:
            out = Path(self.config.getoption("extractbench_results_dir"))
            # one scenario's declared ranking; several scenarios rank on the default
            ranking = rankings[0] if len(rankings) == 1 else None
            paths = write_leaderboard(records, out, ranking=ranking)
            tr = self.config.pluginmanager.get_plugin("terminalreporter")
            if tr is not None:
                tr.write_line(f"extractbench: leaderboard written to {paths[0]}")


_KEY = pytest.StashKey[_State]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_KEY] = _State(config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_KEY, None)
    if state is not None:
        state.finish()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "extractbench_cell" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash[_KEY]
    params = []
    for path in state.scenario_paths():
        run = state.load(path)
        from extractbench.config.plan import grid

        cells = grid(run.scenario)
        multi = len(state.scenario_paths()) > 1
        for cell in cells:
            cid = f"{run.scenario.name}:{cell.id}" if multi else cell.id
            params.append(pytest.param((path, cell), id=cid))
    if not params:
        raise pytest.UsageError("extractbench: no scenario given (--extractbench-scenario PATH "
                                "or ini extractbench_scenario)")
    metafunc.parametrize("extractbench_cell", params, indirect=True)


class CellHandle:
    """What a benchmark test gets: one cell, ready to run."""

    def __init__(self, state: _State, path: Path, cell: Cell) -> None:
        self._state, self.path, self.cell = state, path, cell

    def run(self, benchmark: Any) -> CellRecord:
        """Run the cell once under ``benchmark.pedantic``, record it, assert its gates."""
        from extractbench.config.scenario import RemoteEndpoint

        run = self._state.load(self.path)
        ep = run.scenario.endpoints[self.cell.endpoint]
        live_ok = self._state.config.getoption("extractbench_run_live")
        if isinstance(ep, RemoteEndpoint) and not live_ok:
            pytest.skip(f"endpoint {self.cell.endpoint!r} is a live vendor call "
                        f"(pass --extractbench-run-live and set {ep.api_key_env})")
        runner = self._state.runner(run)
        record: CellRecord = benchmark.pedantic(runner.run_cell, args=(self.cell,), rounds=1,
                                                iterations=1, warmup_rounds=0)
        runner.recorder.append(record)
        assert run.records is not None
        run.records.append(record)
        benchmark.extra_info.update(_extra_info(record))
        if record.status == "skipped":
            pytest.skip(record.error or "skipped")
        if record.status == "error":
            pytest.fail(f"{record.cell_id}: {record.error}", pytrace=False)
        failures = runner.check_gates(record)
        if failures:
            pytest.fail("gate failed: " + "; ".join(failures), pytrace=False)
        return record


def _extra_info(r: CellRecord) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cell_id": r.cell_id, "status": r.status, "queries": r.queries,
        "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
        "cost_usd": r.cost_usd, "teacher_score": r.teacher_score, "base_score": r.base_score,
        "student_score": r.student_score, "fidelity": r.fidelity,
        "scenario_hash": r.provenance.scenario_hash, "git_sha": r.provenance.git_sha,
        "seed": r.seed, "run_id": r.run_id, "utility": r.utility,
        "defended_score": r.defended_score, "fpr": r.fpr, "flagged_at": r.flagged_at,
        "watermark_z": r.watermark_z, "watermark_control_z": r.watermark_control_z,
    }
    if r.transfer_at_flag is not None:
        info["transfer_at_flag"] = r.transfer_at_flag.value
    if r.transfer is not None:
        info.update(transfer=r.transfer.value, transfer_low=r.transfer.low,
                    transfer_high=r.transfer.high)
    return info


@pytest.fixture
def extractbench_cell(request: pytest.FixtureRequest) -> CellHandle:
    """One scenario cell (parametrised by the plugin); call ``.run(benchmark)``."""
    path, cell = request.param
    return CellHandle(request.config.stash[_KEY], path, cell)
