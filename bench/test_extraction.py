"""`pytest bench/`: every cell of the scenario (default scenarios/ci.yaml) as one test.

The extractbench pytest plugin parametrises ``extractbench_cell``; see README "CI and
pytest-benchmark" for --extractbench-scenario, --extractbench-run-live and the benchmark
comparison flags.
"""


def test_cell(extractbench_cell, benchmark):  # type: ignore[no-untyped-def]
    record = extractbench_cell.run(benchmark)
    assert record.status == "ok"
