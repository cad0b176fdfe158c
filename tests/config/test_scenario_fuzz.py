"""Property: whatever bytes a scenario file holds, ``load_scenario`` returns a Scenario that
``run`` can use or raises ScenarioError with lines naming the file, quickly and in bounded
memory. The files are the shipped scenarios, mutated (see ``scenario_fuzz.py``)."""

from __future__ import annotations

import importlib.util
import resource
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings

_spec = importlib.util.spec_from_file_location("scenario_fuzz",
                                               Path(__file__).with_name("scenario_fuzz.py"))
assert _spec is not None and _spec.loader is not None
fuzz = importlib.util.module_from_spec(_spec)
sys.modules["scenario_fuzz"] = fuzz
_spec.loader.exec_module(fuzz)

MEMORY_GROWTH_MB = 200
_DIR = Path(tempfile.mkdtemp(prefix="eb-fuzz-"))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


for _shipped in sorted((fuzz.ROOT / "scenarios").glob("*.yaml")):
    fuzz.load_scenario(_shipped)  # the plugins' imports are not the loader's memory
_START_MB: list[float] = []
"""The process's peak RSS when the first example runs (ru_maxrss only grows, and the tests
that ran before this one in the same process may have raised it)."""


@settings(max_examples=500, deadline=timedelta(seconds=2), database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=fuzz.scenario_files())
def test_a_mutated_scenario_loads_or_is_refused_line_by_line(case: fuzz.Case) -> None:
    if not _START_MB:
        _START_MB.append(_peak_mb())
    path = _DIR / "fuzzed.yaml"
    path.write_bytes(case.data)
    outcome = fuzz.check(path)  # any exception but ScenarioError fails the test
    assert not outcome.problems, (case.mutations, outcome.lines, outcome.problems)
    assert _peak_mb() - _START_MB[0] < MEMORY_GROWTH_MB, (case.mutations, _peak_mb())
