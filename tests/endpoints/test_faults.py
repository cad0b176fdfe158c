"""The fault suite: every fault kind, for both APIs, streaming and not, injected by a raw-socket
proxy (:mod:`extractbench.testing.faults`) between the real SDK clients (behind the Oracle)
and the real reference server. Each campaign must complete with one answer per prompt (no
row lost, none duplicated), every failed attempt a typed, correctly charged log entry."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from extractbench.campaign.oracle import Answer, Oracle, RetryPolicy
from extractbench.config.budget import Budget
from extractbench.endpoints.clients import Endpoint
from extractbench.logs.harvest import (
    ErrorEntry,
    HarvestLog,
    ResponseEntry,
    SentEntry,
    in_flight,
    spent_in,
)
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.testing.faults import FaultProxy

KEY = "fake-fault-suite-0-3be1c9a0"
PROMPTS = [f"What is {i}+{i}?" for i in range(6)]

# fault -> (the error type logged for it, charged?, worst-case tokens charged?). A request
# that was sent and got no status back (stall, reset: the client cannot tell "reset before
# serving" from "served, then reset") may have been billed: its worst case.
EXPECTED = {
    "429:0.05": ("rate_limit", True, False),
    "500": ("server", True, False),
    "stall:1.5": ("timeout", True, True),
    "reset": ("connection", True, True),
    "reset-served": ("connection", True, True),
    "malformed": ("invalid_response", True, True),
    "cut": ("invalid_response", True, True),
}


@pytest.fixture(scope="module")
def upstream(tiny_lm: TinyLM) -> Iterator[RunningServer]:
    app = create_app({"tiny": ServedModel("tiny", tiny_lm)}, {KEY: "attacker-0"})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with RunningServer(app) as srv:
            yield srv
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def proxy(upstream: RunningServer) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.base_url) as p:
        yield p


def campaign(proxy: FaultProxy, path: Path, api: str, stream: bool,
             plan: list[str]) -> list[Answer | object]:
    proxy.reset()
    proxy.plan = list(plan)
    base = proxy.url + "/v1" if api == "openai" else proxy.url
    endpoint = Endpoint(api=api, base_url=base, model="tiny", timeout_s=1.0,  # type: ignore[arg-type]
                        stream=stream)

    async def go() -> list[Answer | object]:
        async with Oracle(endpoint, [("attacker-0", KEY)], Budget(queries=40), HarvestLog(path),
                          retry=RetryPolicy(backoff_base=0.01, seed=0), concurrency=1) as o:
            return list(await o.query_many(PROMPTS, max_tokens=6))

    return asyncio.run(go())


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("api", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", list(EXPECTED))
def test_every_fault_is_survived_typed_and_charged_right(
        proxy: FaultProxy, tmp_path: Path, fault: str, api: str, stream: bool) -> None:
    path = tmp_path / "h.jsonl"
    # the fault hits the first attempt of the first and of the fourth query
    clean = campaign(proxy, tmp_path / "clean.jsonl", api, stream, [])
    outs = campaign(proxy, path, api, stream, [fault, "pass", "pass", "pass", fault])
    assert all(isinstance(o, Answer) for o in outs), outs
    assert [o.text for o in outs] == [o.text for o in clean]  # type: ignore[attr-defined]
    entries = HarvestLog.read(path)
    answers = [e for e in entries if isinstance(e, ResponseEntry)]
    assert sorted(e.request.prompt for e in answers) == sorted(PROMPTS)  # none lost or twice
    errors = [e for e in entries if isinstance(e, ErrorEntry)]
    kind, charged, tokens = EXPECTED[fault]
    assert [(e.error_type, e.charged, e.attempt) for e in errors] == [(kind, charged, 1)] * 2
    assert all((e.usage is not None and e.usage.output_tokens == 6) == tokens for e in errors)
    assert len(proxy.log) == len(PROMPTS) + 2  # each fault cost exactly one more attempt
    assert spent_in(entries).queries == len(PROMPTS) + 2 * charged
    sent = [e for e in entries if isinstance(e, SentEntry)]
    assert len(sent) == len(proxy.log) and in_flight(entries) == []  # each attempt resolved
    if fault.startswith("429"):
        assert all(e.retry_after == 0.05 for e in errors)


def test_the_proxy_passes_clean_traffic_unchanged(proxy: FaultProxy, upstream: RunningServer,
                                                  tmp_path: Path) -> None:
    via_proxy = campaign(proxy, tmp_path / "a.jsonl", "openai", False, [])
    proxy_log = list(proxy.log)
    endpoint = Endpoint(api="openai", base_url=upstream.openai_base_url, model="tiny")

    async def direct() -> list[Answer | object]:
        async with Oracle(endpoint, [("attacker-0", KEY)], Budget(queries=40),
                          HarvestLog(tmp_path / "b.jsonl")) as o:
            return list(await o.query_many(PROMPTS, max_tokens=6))

    assert [o.text for o in via_proxy] == [o.text for o in asyncio.run(direct())]  # type: ignore[attr-defined]
    assert [a for a, _, _ in proxy_log] == ["pass"] * len(PROMPTS)

