"""The public surface: ``extractbench.__all__`` is complete and every name resolves."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest

import extractbench
from extractbench.config.plan import grid


def test_all_names_resolve_and_all_is_sorted_and_complete() -> None:
    for name in extractbench.__all__:
        assert getattr(extractbench, name) is not None, name
    public = {n for n, v in vars(extractbench).items() if not n.startswith("_")
              and not inspect.ismodule(v)} - {"annotations", "TYPE_CHECKING", "Any"}
    # every public name the module defines eagerly is listed
    assert public <= set(extractbench.__all__), public - set(extractbench.__all__)
    assert set(extractbench._LAZY) <= set(extractbench.__all__)


def test_every_user_facing_error_derives_from_the_base() -> None:
    from extractbench.config.costs import SpendError
    from extractbench.endpoints.clients import EndpointError

    for cls in (extractbench.ScenarioError, extractbench.RunError, SpendError, EndpointError,
                extractbench.UnknownNameError):
        assert issubclass(cls, extractbench.ExtractbenchError), cls


def test_run_is_a_function_not_the_subpackage() -> None:
    import extractbench.measure.runner

    assert inspect.isfunction(extractbench.run)
    assert inspect.iscoroutinefunction(extractbench.run_async)


SCENARIO = """
version: 1
name: api
endpoints:
  ref: {kind: reference, model: knowledge-ref}
tasks:
  kb: {family: knowledge, attack_pool: 60, heldout: 20, benign: 10}
attacks:
  rp: {name: random-pool}
budgets: [{queries: 12}]
students:
  lookup: {name: lookup}
"""


@pytest.mark.slow
def test_run_from_a_running_event_loop_with_a_loaded_scenario(tmp_path: Path) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(SCENARIO)
    sc = extractbench.load_scenario(path)

    async def notebook_cell() -> tuple[extractbench.RunResult, extractbench.RunResult]:
        # a notebook's loop is running: both the sync and the async call must work in it
        a = extractbench.run(sc, results_dir=tmp_path / "r", run_id="sync", path=path)
        b = await extractbench.run_async(path, results_dir=tmp_path / "r", run_id="async")
        return a, b

    a, b = asyncio.run(notebook_cell())
    assert [r.cell_id for r in a.records] == [c.id for c in grid(sc)]
    assert a.records[0].status == "ok" and b.records[0].status == "ok", a.records[0].error
    assert a.records[0].queries == 12
    # same scenario, same seed: the same measurement
    assert a.records[0].student_score == b.records[0].student_score
    assert extractbench.read_records([a.run_dir])[0].cell_id == a.records[0].cell_id


# Exceptions that are not user-facing errors: control flow an attack catches (the budget is
# spent), and internals that never leave their module (HTTP errors become the API's JSON).
NOT_ERRORS = {"BudgetExhausted", "KeyDead", "_Converged", "_Stop", "ApiError"}


def test_every_exception_class_of_the_package_derives_from_the_base() -> None:
    import importlib
    import pkgutil

    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(extractbench.__path__, "extractbench."):
        if info.name == "extractbench.__main__":  # importing it runs the CLI
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, Exception)
                    and obj.__module__ == module.__name__):
                found[name] = obj
    assert len(found) >= 14  # the classes the issue counted are all seen
    stray = {n for n, cls in found.items()
             if not issubclass(cls, extractbench.ExtractbenchError) and n not in NOT_ERRORS}
    assert not stray, stray
