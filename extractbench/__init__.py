"""extractbench: how well does an LLM API endpoint resist capability extraction by distillation?

The public surface is small; the engine lives in the submodules named in DESIGN.md.

    from extractbench import load_scenario, run_scenario
"""

from extractbench.config.scenario import Scenario, ScenarioError, load_scenario
from extractbench.logs.records import CellRecord
from extractbench.registry import Registry, UnknownNameError

__version__ = "0.1.0"


def run_scenario(*args: object, **kwargs: object) -> object:
    """See :func:`extractbench.run.runner.run_scenario` (imported lazily: it loads torch)."""
    from extractbench.run.runner import run_scenario as _run

    return _run(*args, **kwargs)  # type: ignore[arg-type]


__all__ = [
    "CellRecord",
    "Registry",
    "Scenario",
    "ScenarioError",
    "UnknownNameError",
    "__version__",
    "load_scenario",
    "run_scenario",
]
