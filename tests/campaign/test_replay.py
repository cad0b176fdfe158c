"""Resuming a harvest exactly once: a resumed attack is replayed against its log (answers
already bought are returned without being sent or charged again) and goes on live where the
log ends. Against a real local HTTP server (the FakeEndpoint) with the real SDK client."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from extractbench.campaign.oracle import (
    Answer,
    BudgetExhausted,
    Failure,
    Oracle,
    RetryPolicy,
)
from extractbench.config.budget import Budget, Spent
from extractbench.endpoints.clients import Endpoint
from extractbench.logs.harvest import (
    ErrorEntry,
    HarvestLog,
    NoteEntry,
    ResponseEntry,
    in_flight,
    pairs,
    spent_in,
)
from extractbench.testing.fake_endpoint import GOOD_KEY, OTHER_KEY, FakeEndpoint, serve_fake


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEndpoint]:
    with serve_fake() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeEndpoint) -> FakeEndpoint:
    server.reset()
    return server


def oracle(fake: FakeEndpoint, path: Path, queries: int = 40, **kw: Any) -> Oracle:
    return Oracle(
        Endpoint(api="openai", base_url=fake.openai_url, model="m1", timeout_s=5),
        [("attacker-0", GOOD_KEY), ("attacker-1", OTHER_KEY)],
        Budget(queries=queries), HarvestLog(path),
        retry=RetryPolicy(backoff_base=0.01, seed=1), concurrency=4, **kw,
    )


async def attack(o: Oracle, seed: int = 7, seen: list[int] | None = None) -> str:
    """A seeded attack whose round sizes follow ``remaining()`` (as the real attacks do)."""
    rng = random.Random(seed)
    o.note("start", seed=seed)
    while True:
        left = o.remaining().queries
        assert left is not None
        if seen is not None:
            seen.append(left)
        if left == 0:
            o.note("stopping: budget")
            return "budget"
        n = min(left, rng.randint(3, 7))
        prompts = [f"q{rng.randint(0, 10_000)}" for _ in range(n)]
        try:
            outs = await asyncio.gather(*(o.query(p, max_tokens=8) for p in prompts))
        except BudgetExhausted:
            return "budget"
        if any(isinstance(x, Failure) for x in outs):
            o.note("a failure", n=sum(isinstance(x, Failure) for x in outs))


def campaign(fake: FakeEndpoint, path: Path, seed: int = 7, **kw: Any) -> list[int]:
    seen: list[int] = []

    async def go() -> None:
        async with oracle(fake, path, **kw) as o:
            await attack(o, seed, seen)

    asyncio.run(go())
    return seen


def answers(path: Path) -> list[tuple[int, str, str, str]]:
    return sorted((e.index, e.key_id, e.request.prompt, e.response.text)
                  for e in pairs(HarvestLog.read(path)))


def crash_after(src: Path, dst: Path, lines: int, torn: bool = False) -> None:
    """``dst``: what ``src`` held when the process died after writing ``lines`` lines (and half
    of the next one with ``torn``)."""
    text = src.read_text().splitlines(keepends=True)
    cut = "".join(text[:lines])
    if torn:
        cut += text[lines][: len(text[lines]) // 2]
    dst.write_text(cut)


def quiet_point(path: Path, lines: int) -> int:
    """The first line count >= ``lines`` after which no attempt of ``path`` is in flight."""
    text = path.read_text().splitlines(keepends=True)
    for n in range(lines, len(text) + 1):
        probe = path.with_suffix(".probe")
        probe.write_text("".join(text[:n]))
        if not in_flight(HarvestLog.read(probe)):
            return n
    raise AssertionError("never quiet")


@pytest.mark.parametrize("lines, torn", [(2, False), (9, True), (17, False), (30, True)])
def test_a_resumed_campaign_ends_with_the_uninterrupted_harvest(
        fake: FakeEndpoint, tmp_path: Path, lines: int, torn: bool) -> None:
    """A crash with nothing in flight (between rounds, during a backoff): exact."""
    whole = tmp_path / "whole.jsonl"
    seen_whole = campaign(fake, whole)
    sent_whole = len(fake.requests)
    assert sent_whole == 40

    fake.reset()
    cut = tmp_path / "cut.jsonl"
    crash_after(whole, cut, quiet_point(whole, lines), torn)
    assert not in_flight(HarvestLog.read(cut))
    before = spent_in(HarvestLog.read(cut)).queries
    seen = campaign(fake, cut)
    assert answers(cut) == answers(whole)
    assert seen == seen_whole  # the attack saw the same remaining budget at every round
    assert len(fake.requests) == sent_whole - before  # nothing bought twice
    assert spent_in(HarvestLog.read(cut)) == spent_in(HarvestLog.read(whole))
    notes = [e.text for e in HarvestLog.read(cut) if isinstance(e, NoteEntry)]
    assert notes.count("start") == 1 and notes.count("stopping: budget") == 1


def test_a_finished_campaign_resumed_sends_nothing(fake: FakeEndpoint, tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    campaign(fake, path)
    fake.reset()
    size = len(answers(path))

    async def again() -> tuple[Spent, Spent, int, dict[str, int]]:
        async with oracle(fake, path) as o:
            await attack(o)
            s = o.stats()
            return o.spent(), s.spent, s.answers, s.errors

    shown, total, n_answers, errors = asyncio.run(again())
    assert fake.requests == []
    assert shown == total and total.queries == 40 and n_answers == size and errors == {}
    assert len(answers(path)) == size


@pytest.mark.parametrize("lines", [5, 12, 25])
def test_queries_in_flight_at_the_crash_are_charged_and_the_budget_holds(
        fake: FakeEndpoint, tmp_path: Path, lines: int) -> None:
    """A crash with attempts in flight: the endpoint served them (the fake saw them), so each
    is charged its worst case on resume; the answers bought are those of the uninterrupted
    run, and everything the endpoint saw, across both runs, is within the budget."""
    whole = tmp_path / "whole.jsonl"
    campaign(fake, whole)
    by_index = {i: (k, p, t) for i, k, p, t in answers(whole)}
    text = whole.read_text().splitlines(keepends=True)
    n = next(n for n in range(lines, len(text))
             if in_flight(HarvestLog.read(_prefix(whole, tmp_path, text[:n]))))
    cut = tmp_path / "cut.jsonl"
    crash_after(whole, cut, n)
    lost = in_flight(HarvestLog.read(cut))
    assert lost
    seen_before = sum(1 for line in text[:n] if '"entry_type":"sent"' in line)
    fake.reset()
    campaign(fake, cut)
    got = HarvestLog.read(cut)
    interrupted = [e for e in got if isinstance(e, ErrorEntry) and e.error_type == "interrupted"]
    assert sorted((e.index, e.attempt) for e in interrupted) == sorted(
        (e.index, e.attempt) for e in lost)
    assert all(e.charged and e.usage is not None and e.usage.output_tokens == 8
               for e in interrupted)
    assert seen_before + len(fake.requests) <= 40  # what the endpoint served: within budget
    assert spent_in(got).queries <= 40 and not in_flight(got)
    for i, k, p, t in answers(cut):  # the same query at the same index as uninterrupted
        assert by_index.get(i, (k, p, t)) == (k, p, t)
    assert len(answers(cut)) >= len(answers(whole)) - len(lost)


def _prefix(src: Path, tmp: Path, lines: list[str]) -> Path:
    out = tmp / (src.stem + ".prefix")
    out.write_text("".join(lines))
    return out


def test_a_query_in_flight_at_the_crash_is_sent_again_under_its_index(
        fake: FakeEndpoint, tmp_path: Path) -> None:
    whole = tmp_path / "whole.jsonl"
    campaign(fake, whole)
    entries = whole.read_text().splitlines(keepends=True)
    gone = next(i for i, line in enumerate(entries)
                if '"index":5,' in line and '"entry_type":"response"' in line)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(entries[:gone] + entries[gone + 1:]))  # its answer never came
    fake.reset()
    campaign(fake, cut, queries=41)  # room for the lost answer's second purchase
    assert answers(cut) == answers(whole)
    assert len(fake.requests) == 1
    again = [e for e in HarvestLog.read(cut) if isinstance(e, ResponseEntry) and e.index == 5]
    assert [e.attempt for e in again] == [2]  # attempt 1 was lost in flight, and charged
    fake.reset()
    exact = tmp_path / "exact.jsonl"
    exact.write_text("".join(entries[:gone] + entries[gone + 1:]))
    campaign(fake, exact)  # the budget is spent: the lost answer cannot be bought again
    assert fake.requests == [] and spent_in(HarvestLog.read(exact)).queries == 40


def test_retried_attempts_are_continued_not_restarted(fake: FakeEndpoint,
                                                       tmp_path: Path) -> None:
    fake.script = ["500", "500"]
    whole = tmp_path / "whole.jsonl"
    campaign(fake, whole, queries=12)
    log = HarvestLog.read(whole)
    first_error = next(i for i, e in enumerate(log) if isinstance(e, ErrorEntry))
    # die during the backoff after the first 500: that query has one charged attempt logged
    cut = tmp_path / "cut.jsonl"
    crash_after(whole, cut, first_error + 1)
    failed = log[first_error]
    assert isinstance(failed, ErrorEntry) and failed.wait_s is not None
    fake.reset()
    campaign(fake, cut, queries=12)
    got = HarvestLog.read(cut)
    retried = [e for e in got if isinstance(e, ResponseEntry) and e.index == failed.index]
    assert [e.attempt for e in retried] == [2]  # attempt 1 was the logged 500
    assert spent_in(got).queries == 12  # the 500 stays charged; the budget holds


def test_a_changed_attack_ends_the_replay_and_keeps_what_was_bought(
        fake: FakeEndpoint, tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    campaign(fake, path, seed=7, queries=10)
    bought = answers(path)
    fake.reset()
    campaign(fake, path, seed=8, queries=20)  # another seed: other prompts
    entries = HarvestLog.read(path)
    [note] = [e for e in entries if isinstance(e, NoteEntry) and e.text.startswith("replay")]
    assert note.data["index"] == 0 and note.data["fresh_index"] == 10
    indices = [e.index for e in pairs(entries)]
    assert len(indices) == len(set(indices)) == 20  # no index reused
    assert set(bought) <= set(answers(path))  # the first campaign's answers are kept
    assert len(fake.requests) == 10 and spent_in(entries).queries == 20


def test_a_dead_key_stays_dead_on_replay(fake: FakeEndpoint, tmp_path: Path) -> None:
    fake.valid_keys = {GOOD_KEY}  # attacker-1's key is refused
    path = tmp_path / "h.jsonl"

    async def go() -> list[Answer | Failure]:
        async with oracle(fake, path) as o:
            return await o.query_many([f"p{i}" for i in range(6)])

    first = asyncio.run(go())
    sent = len(fake.requests)
    second = asyncio.run(go())
    assert [(o.ok, o.key_id) for o in second] == [(o.ok, o.key_id) for o in first]
    assert len(fake.requests) == sent  # neither the refused key nor the answers are re-sent


def test_without_replay_every_query_is_new(fake: FakeEndpoint, tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"

    async def go() -> list[int]:
        async with oracle(fake, path, replay=False) as o:
            return [x.index for x in await o.query_many(["a", "b"])]

    assert asyncio.run(go()) == [0, 1]
    assert asyncio.run(go()) == [2, 3]
    assert len(fake.requests) == 4
