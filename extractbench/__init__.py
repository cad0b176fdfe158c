"""extractbench: how well does an LLM API endpoint resist capability extraction by distillation?

The public surface; the engine lives in subpackages that follow the data flow (scenario →
endpoints → campaign → logs → students → record → report)::

    import extractbench

    result = extractbench.run("scenarios/ci.yaml", only="q30")     # or await run_async(...)
    records = extractbench.read_records([result.run_dir])
    extractbench.write_leaderboard(records, Path("my-board"))

Every name but :class:`ExtractbenchError` loads on first use, so ``import extractbench`` (and
the pytest plugin, which loads in every pytest session of the environment) costs nothing;
torch, pandas and matplotlib load only when a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from extractbench.errors import ExtractbenchError

if TYPE_CHECKING:
    from extractbench.attacks import ATTACKS
    from extractbench.config.plan import Cell, grid
    from extractbench.config.scenario import Scenario, ScenarioError, load_scenario
    from extractbench.defenses import DEFENSES
    from extractbench.logs.records import CellRecord
    from extractbench.logs.store import load_records as read_records
    from extractbench.measure.api import run, run_async
    from extractbench.measure.fleet import RunError
    from extractbench.measure.runner import RunResult
    from extractbench.registry import Registry, UnknownNameError
    from extractbench.report.leaderboard import write_leaderboard
    from extractbench.students import STUDENTS
    from extractbench.tasks import TASKS

__version__ = "0.1.0"

_LAZY = {
    "ATTACKS": ("extractbench.attacks", "ATTACKS"),
    "Cell": ("extractbench.config.plan", "Cell"),
    "CellRecord": ("extractbench.logs.records", "CellRecord"),
    "Registry": ("extractbench.registry", "Registry"),
    "Scenario": ("extractbench.config.scenario", "Scenario"),
    "ScenarioError": ("extractbench.config.scenario", "ScenarioError"),
    "UnknownNameError": ("extractbench.registry", "UnknownNameError"),
    "load_scenario": ("extractbench.config.scenario", "load_scenario"),
    "DEFENSES": ("extractbench.defenses", "DEFENSES"),
    "RunError": ("extractbench.measure.fleet", "RunError"),
    "RunResult": ("extractbench.measure.runner", "RunResult"),
    "STUDENTS": ("extractbench.students", "STUDENTS"),
    "TASKS": ("extractbench.tasks", "TASKS"),
    "grid": ("extractbench.config.plan", "grid"),
    "read_records": ("extractbench.logs.store", "load_records"),
    "run": ("extractbench.measure.api", "run"),
    "run_async": ("extractbench.measure.api", "run_async"),
    "write_leaderboard": ("extractbench.report.leaderboard", "write_leaderboard"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'extractbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ATTACKS",
    "DEFENSES",
    "STUDENTS",
    "TASKS",
    "Cell",
    "CellRecord",
    "ExtractbenchError",
    "Registry",
    "RunError",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "UnknownNameError",
    "__version__",
    "grid",
    "load_scenario",
    "read_records",
    "run",
    "run_async",
    "write_leaderboard",
]
