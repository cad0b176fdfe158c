"""The Python API of a run: :func:`run` and :func:`run_async`.

    import extractbench
    result = extractbench.run("scenarios/ci.yaml", results_dir="results", only="q30")
    print(result.ok, [r.transfer for r in result.records])

Both take a scenario path or a loaded :class:`~extractbench.config.scenario.Scenario`. The run
itself is blocking work (servers on loopback, training on the CPU); :func:`run_async` runs it
in a worker thread, so it can be awaited from a running event loop (a notebook), and
:func:`run` called where a loop is already running (a Jupyter cell) does the same and blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

from extractbench.config.scenario import Scenario, load_scenario
from extractbench.measure.runner import RunResult, run_scenario

__all__ = ["run", "run_async"]


def _resolve(scenario: str | Path | Scenario, path: str | Path | None) -> tuple[Scenario, Path]:
    if isinstance(scenario, Scenario):
        where = Path(path) if path is not None else Path(f"{scenario.name}.yaml")
        return scenario, where
    p = Path(scenario)
    return load_scenario(p), p


def _run(scenario: str | Path | Scenario, results_dir: str | Path, run_id: str | None,
         only: str | None, progress: bool, fail_fast: bool, path: str | Path | None
         ) -> RunResult:
    sc, where = _resolve(scenario, path)
    return run_scenario(sc, where, Path(results_dir), run_id=run_id, only=only,
                        progress=progress, fail_fast=fail_fast)


def run(scenario: str | Path | Scenario, *, results_dir: str | Path = "results",
        run_id: str | None = None, only: str | None = None, progress: bool = False,
        fail_fast: bool = False, path: str | Path | None = None) -> RunResult:
    """Run every cell of ``scenario`` (or those whose id contains ``only``) and return the
    :class:`~extractbench.measure.runner.RunResult`: run directory, records, gate failures.

    ``scenario`` is a YAML path or a loaded ``Scenario`` (then ``path`` only names it in the
    records' provenance; nothing is read from it). The run is written under
    ``RESULTS_DIR/runs/<run-id>/``; the leaderboard is not (see
    :func:`extractbench.write_leaderboard`). Raises
    :class:`~extractbench.errors.ExtractbenchError` subclasses for bad input or a run that
    cannot start; a broken cell is an ``error`` record, not an exception.
    """
    args = (scenario, results_dir, run_id, only, progress, fail_fast, path)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: run here
        return _run(*args)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_run, *args).result()


async def run_async(scenario: str | Path | Scenario, *, results_dir: str | Path = "results",
                    run_id: str | None = None, only: str | None = None,
                    progress: bool = False, fail_fast: bool = False,
                    path: str | Path | None = None) -> RunResult:
    """:func:`run`, awaitable: the run goes on in a worker thread while the loop stays free."""
    return await asyncio.to_thread(_run, scenario, results_dir, run_id, only, progress,
                                   fail_fast, path)
