"""Property: whatever bytes a scenario file holds, ``load_scenario`` returns a Scenario that
``run`` can use or raises ScenarioError with lines naming the file, quickly and in bounded
memory. The files are the shipped scenarios, mutated (see ``scenario_fuzz.py``)."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import tracemalloc
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings

_spec = importlib.util.spec_from_file_location("scenario_fuzz",
                                               Path(__file__).with_name("scenario_fuzz.py"))
assert _spec is not None and _spec.loader is not None
fuzz = importlib.util.module_from_spec(_spec)
sys.modules["scenario_fuzz"] = fuzz
_spec.loader.exec_module(fuzz)

PEAK_MB = 64
"""The most Python memory one load may allocate at its peak. A shipped scenario takes a few
MB; the 1.3 KB alias bomb the loader refuses would need gigabytes. Measured per example with
tracemalloc, so what other tests or threads in the process hold does not count (the process's
peak RSS, used before, moved by 200 MB on a valid file in CI)."""
_DIR = Path(tempfile.mkdtemp(prefix="eb-fuzz-"))

for _shipped in sorted((fuzz.ROOT / "scenarios").glob("*.yaml")):
    fuzz.load_scenario(_shipped)  # the plugins' imports are not the loader's memory


@settings(max_examples=500, deadline=timedelta(seconds=10), database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=fuzz.scenario_files())
def test_a_mutated_scenario_loads_or_is_refused_line_by_line(case: fuzz.Case) -> None:
    path = _DIR / "fuzzed.yaml"
    path.write_bytes(case.data)
    tracemalloc.start()
    try:
        outcome = fuzz.check(path)  # any exception but ScenarioError fails the test
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert not outcome.problems, (case.mutations, outcome.lines, outcome.problems)
    assert peak_mb < PEAK_MB, (case.mutations, peak_mb)
