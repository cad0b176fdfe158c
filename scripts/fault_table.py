"""The fault table: campaigns through the fault-injecting proxy against the reference server
(the arith-ref teacher), one per fault kind x API x streaming, and what each left.

    .venv/bin/python scripts/fault_table.py --prompts 30 --rate 0.3

A fault hits a random share (``--rate``) of the requests; each campaign sends ``--prompts``
distinct prompts through the Oracle and the real SDK client. Columns: faults injected, whether
the campaign completed (every prompt answered), answers lost (prompts without an answer) and
duplicated (prompts answered twice), failed attempts logged and their types, requests that
reached the proxy, queries charged, and requests sent but not charged (every request that left
is charged: an error status one query, a broken answer or a request with no status back, such as
a reset before or after the upstream served it, its worst case).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from collections import Counter
from pathlib import Path

import torch

from extractbench.campaign.oracle import Answer, Oracle, RetryPolicy
from extractbench.config.budget import Budget
from extractbench.endpoints.clients import Endpoint
from extractbench.logs.harvest import ErrorEntry, HarvestLog, ResponseEntry, spent_in
from extractbench.reference.teachers import load_reference
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.testing.faults import FaultProxy

KEY = "fake-fault-table-0-5e0c1d2a"
FAULTS = ["429:0.05", "500", "stall:1.5", "reset", "reset-served", "malformed", "cut"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=30)
    ap.add_argument("--rate", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    prompts = [f"{a}+{b}=" for a, b in ((rng.randint(10, 99), rng.randint(10, 99))
                                        for _ in range(args.prompts))]
    prompts = list(dict.fromkeys(prompts))
    app = create_app({"arith-ref": ServedModel("arith-ref", load_reference("arith-ref"))},
                     {KEY: "attacker-0"})
    print("| fault | api | stream | injected | completed | lost | duplicated "
          "| failed attempts (types) | sent | charged | sent, not charged |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    bad = 0
    with RunningServer(app) as upstream, FaultProxy(upstream.base_url) as proxy, \
            tempfile.TemporaryDirectory() as tmp:
        for fault in FAULTS:
            for api in ("openai", "anthropic"):
                for stream in (False, True):
                    proxy.reset()
                    # enough plan for every first attempt and every retry
                    proxy.plan = [fault if rng.random() < args.rate else "pass"
                                  for _ in range(4 * len(prompts))]
                    path = Path(tmp) / f"{fault}-{api}-{stream}.jsonl".replace(":", "_")
                    base = proxy.url + "/v1" if api == "openai" else proxy.url
                    ep = Endpoint(api=api, base_url=base, model="arith-ref",  # type: ignore[arg-type]
                                  timeout_s=1.0, stream=stream)

                    async def go(ep: Endpoint = ep, path: Path = path) -> list[object]:
                        async with Oracle(ep, [("attacker-0", KEY)],
                                          Budget(queries=10 * len(prompts)), HarvestLog(path),
                                          retry=RetryPolicy(backoff_base=0.01, max_attempts=20,
                                                            seed=0),
                                          concurrency=4) as o:
                            return list(await o.query_many(prompts, max_tokens=8))

                    outs = asyncio.run(go())
                    entries = HarvestLog.read(path)
                    answered = Counter(e.request.prompt for e in entries
                                       if isinstance(e, ResponseEntry))
                    errors = [e for e in entries if isinstance(e, ErrorEntry)]
                    log = list(proxy.log)
                    injected = sum(a != "pass" for a, _, _ in log)
                    completed = all(isinstance(o, Answer) for o in outs)
                    lost = sum(1 for p in prompts if answered[p] == 0)
                    dup = sum(n - 1 for n in answered.values() if n > 1)
                    types = Counter(e.error_type for e in errors)
                    charged = spent_in(entries).queries
                    not_charged = len(log) - charged
                    bad += ((not completed) or lost > 0 or dup > 0 or len(errors) != injected
                            or not_charged != 0)
                    print(f"| {fault} | {api} | {'yes' if stream else 'no'} | {injected} "
                          f"| {'yes' if completed else 'NO'} | {lost} | {dup} | {len(errors)} "
                          f"({', '.join(f'{k} {v}' for k, v in sorted(types.items()))}) "
                          f"| {len(log)} | {charged} | {not_charged} |")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
