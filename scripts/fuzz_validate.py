"""Run generated scenario files through ``load_scenario`` and count what happens.

The files are the shipped scenarios mutated (``tests/config/scenario_fuzz.py``: dropped,
renamed, retyped and duplicated keys, random scalars and bytes, cuts, deep nesting, aliases and
alias bombs, unicode names). Each file is loaded in a worker process that is killed after
``--timeout`` seconds (a hang) and cannot map more than ``--memory-mb``. An accepted file is
also checked the way ``run`` would use it: the grid expands, every cell's files have usable
names, the hash computes and every gate selects a cell.

    .venv/bin/python scripts/fuzz_validate.py -n 2000 --seed 1
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
import traceback
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _load_fuzz() -> Any:
    spec = importlib.util.spec_from_file_location(
        "scenario_fuzz", ROOT / "tests" / "config" / "scenario_fuzz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scenario_fuzz"] = module
    spec.loader.exec_module(module)
    return module


def _worker(conn: Connection, memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    fuzz = _load_fuzz()
    for shipped in sorted((ROOT / "scenarios").glob("*.yaml")):
        fuzz.load_scenario(shipped)  # warm: the plugins' imports are not the loader's memory
    conn.send(_rss_mb())
    while True:
        path = conn.recv()
        if path is None:
            return
        start = time.perf_counter()
        try:
            out = fuzz.check(Path(path))
            result: dict[str, Any] = {"accepted": out.accepted, "problems": out.problems,
                                      "lines": out.lines[:3]}
        except BaseException as exc:  # a traceback is what is being counted
            result = {"traceback": f"{type(exc).__name__}: {exc}"[:300],
                      "where": traceback.format_exc().strip().splitlines()[-3:]}
        result["seconds"] = time.perf_counter() - start
        result["peak_mb"] = _rss_mb()
        conn.send(result)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


class Pool:
    """One worker process, replaced when it hangs or dies."""

    def __init__(self, memory_mb: int) -> None:
        self.memory_mb = memory_mb
        self.baseline_mb = 0.0
        self._start()

    def _start(self) -> None:
        self.conn, child = mp.Pipe()
        self.proc = mp.Process(target=_worker, args=(child, self.memory_mb), daemon=True)
        self.proc.start()
        self.baseline_mb = max(self.baseline_mb, self.conn.recv())

    def run(self, path: Path, timeout: float) -> dict[str, Any] | None:
        """The worker's result, or ``None`` after ``timeout`` seconds (the worker is killed)."""
        self.conn.send(str(path))
        if self.conn.poll(timeout):
            try:
                result: dict[str, Any] = self.conn.recv()
                return result
            except EOFError:
                pass
        self.proc.kill()
        self.proc.join()
        self._start()
        return None

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="files to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before a hang")
    parser.add_argument("--memory-mb", type=int, default=4096, help="address space per worker")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from hypothesis import HealthCheck, Phase, given, seed, settings

    fuzz = _load_fuzz()
    pool = Pool(args.memory_mb)
    counts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    slowest = peak = 0.0
    folder = Path(tempfile.mkdtemp(prefix="eb-fuzz-"))

    def note(what: str, text: str) -> None:
        counts[what] += 1
        examples.setdefault(what, [])
        if len(examples[what]) < 3:
            examples[what].append(text)

    @seed(args.seed)
    @settings(max_examples=args.n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=fuzz.scenario_files())
    def one(case: Any) -> None:
        nonlocal slowest, peak
        path = folder / f"f{counts['generated']}.yaml"
        path.write_bytes(case.data)
        counts["generated"] += 1
        kinds.update(case.mutations)
        result = pool.run(path, args.timeout)
        if result is None:
            note("hangs", f"{case.mutations} {path}")
            return
        path.unlink()
        slowest = max(slowest, result["seconds"])
        peak = max(peak, result["peak_mb"])
        if "traceback" in result:
            note("tracebacks", f"{case.mutations} {result['traceback']} {result['where']}")
        elif result["problems"]:
            note("broken promises", f"{case.mutations} {result['problems'][:2]}")
        elif result["accepted"]:
            counts["accepted"] += 1
        else:
            counts["rejected cleanly"] += 1

    one()
    pool.close()
    print(f"generated:        {counts['generated']}  (seed {args.seed}; mutations: "
          + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + ")")
    print(f"rejected cleanly: {counts['rejected cleanly']}")
    print(f"accepted:         {counts['accepted']}  (grid expands, files named, hash computes, "
          "every gate selects a cell)")
    print(f"broken promises:  {counts['broken promises']}  (a line not naming the file, an "
          "internal error, or an accepted file run would trip on)")
    print(f"tracebacks:       {counts['tracebacks']}")
    print(f"hangs (>{args.timeout:g} s):    {counts['hangs']}")
    print(f"slowest file:     {slowest:.2f} s")
    print(f"peak memory:      {peak:.0f} MB RSS per worker ({pool.baseline_mb:.0f} MB after "
          f"importing the plugins; +{max(0.0, peak - pool.baseline_mb):.0f} MB)")
    for what, texts in examples.items():
        for text in texts:
            print(f"  {what}: {text}")
    bad = counts["tracebacks"] + counts["hangs"] + counts["broken promises"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
