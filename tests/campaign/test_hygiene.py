"""Held-out hygiene at the oracle, with the real task content keys: a held-out problem asked
in another wording, commuted, or with the reasoning suffix, is refused whichever attack sends
it (nothing sent, nothing charged); everything else goes through."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from extractbench.campaign.oracle import Failure, Oracle
from extractbench.config.budget import Budget
from extractbench.endpoints.clients import Endpoint
from extractbench.logs.harvest import ErrorEntry, HarvestLog
from extractbench.tasks import TASKS, HeldOutContent
from extractbench.testing.fake_endpoint import GOOD_KEY, FakeEndpoint, serve_fake


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeEndpoint]:
    with serve_fake() as f:
        yield f


def test_held_out_problems_in_any_wording_are_refused(fake: FakeEndpoint,
                                                      tmp_path: Path) -> None:
    task = TASKS.get("arithmetic")(0, {"attack_pool": 300, "heldout": 50, "benign": 10},
                                   digits=2, ops=["+"])
    hygiene = HeldOutContent(task)
    held = task.split("heldout")[:5]
    twins = []
    for item in held:
        a, b = map(int, re.findall(r"\d+", item.prompt)[:2])
        twins += [f"Compute {b} + {a}. Answer with the number only.",  # commuted, reworded
                  f"What is {a} + {b}? Answer with the number only. Show your working."]
    allowed = [i.prompt for i in task.split("attack_pool")[:5]]
    fake.reset()

    async def go() -> list[object]:
        async with Oracle(Endpoint(api="openai", base_url=fake.openai_url, model="m1"),
                          [("attacker-0", GOOD_KEY)], Budget(queries=100),
                          HarvestLog(tmp_path / "h.jsonl"), forbids=hygiene.forbids) as o:
            return [await o.query(p) for p in twins + allowed]

    outs = asyncio.run(go())
    refused = [o for o in outs if isinstance(o, Failure)]
    assert [o.error_type for o in refused] == ["heldout"] * len(twins)
    assert len(fake.requests) == len(allowed)
    entries = HarvestLog.read(tmp_path / "h.jsonl")
    assert all(not e.charged for e in entries if isinstance(e, ErrorEntry))
    assert hygiene.overlap(allowed) == 0 and hygiene.overlap(twins) == len(held)
