"""The Oracle against a real local HTTP server (the FakeEndpoint of test_clients.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from extractbench.campaign.oracle import (
    Answer,
    BudgetExhausted,
    Failure,
    Oracle,
    RateLimits,
    RetryPolicy,
)
from extractbench.config.budget import Budget, Prices, Spent
from extractbench.endpoints.clients import Endpoint
from extractbench.endpoints.tokens import estimate_tokens
from extractbench.logs.harvest import (
    ErrorEntry,
    HarvestLog,
    ResponseEntry,
    SegmentEntry,
    SentEntry,
    pairs,
)
from extractbench.tasks.base import prompt_hash
from extractbench.testing.fake_endpoint import (
    BAD_KEY,
    GOOD_KEY,
    OTHER_KEY,
    FakeEndpoint,
    closed_port_url,
    serve_fake,
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEndpoint]:
    with serve_fake() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeEndpoint) -> FakeEndpoint:
    server.reset()
    return server


def make_oracle(
    base_url: str,
    path: Path,
    budget: Budget | None = None,
    keys: list[tuple[str, str]] | None = None,
    api: str = "openai",
    **kw: Any,
) -> Oracle:
    """``kw``: the Oracle's own keywords, and the fields of :class:`RetryPolicy` and
    :class:`RateLimits` (``backoff_base`` defaults to 0.01 s here)."""
    retry = {f: kw.pop(f) for f in ("max_attempts", "backoff_base", "backoff_max", "seed")
             if f in kw}
    retry.setdefault("backoff_base", 0.01)
    rates = {f: kw.pop(f) for f in ("requests_per_minute", "tokens_per_minute") if f in kw}
    return Oracle(
        Endpoint(api=api, base_url=base_url, model="m1", timeout_s=5),  # type: ignore[arg-type]
        keys if keys is not None else [("attacker-0", GOOD_KEY)],
        budget or Budget(queries=100),
        HarvestLog(path / "harvest.jsonl"),
        retry=RetryPolicy(**retry),
        rates=RateLimits(**rates),
        **kw,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_answer_is_logged_and_charged(fake: FakeEndpoint, tmp_path: Path) -> None:
    async def go() -> Answer | Failure:
        async with make_oracle(fake.openai_url, tmp_path, prices=Prices(input_per_mtok=1e6)) as o:
            out = await o.query("what is 2+2?", max_tokens=8, logprobs=True, top_logprobs=2)
            assert o.spent() == Spent(queries=1, input_tokens=12, output_tokens=5, usd=12.0)
            return out

    out = run(go())
    assert isinstance(out, Answer)
    assert out.text == "answer to what is 2+2?"
    assert (out.index, out.key_id, out.attempts) == (0, "attacker-0", 1)
    assert out.usage.estimated is False
    assert out.logprobs is not None and len(out.logprobs[0].top) == 2
    entries = HarvestLog.read(tmp_path / "harvest.jsonl")
    assert [e.entry_type for e in entries] == ["segment", "sent", "response"]
    seg, sent, resp = entries
    assert isinstance(sent, SentEntry) and (sent.index, sent.attempt) == (0, 1)
    assert (sent.usage.input_tokens, sent.usage.output_tokens) == (len("what is 2+2?") + 16, 8)
    assert isinstance(seg, SegmentEntry) and seg.api == "openai" and seg.model == "m1"
    assert isinstance(resp, ResponseEntry)
    assert resp.request.prompt_hash == prompt_hash("what is 2+2?")
    assert resp.request.params.max_tokens == 8 and resp.request.params.top_logprobs == 2
    assert resp.response.logprobs == out.logprobs
    assert (resp.usage.input_tokens, resp.cost_usd, resp.tokens_estimated) == (12, 12.0, False)


def test_anthropic_endpoint(fake: FakeEndpoint, tmp_path: Path) -> None:
    async def go() -> Answer | Failure:
        async with make_oracle(fake.url, tmp_path, api="anthropic") as o:
            return await o.query("hello", max_tokens=4)

    out = run(go())
    assert isinstance(out, Answer) and out.text == "answer to hello" and out.logprobs is None
    assert fake.requests[0]["path"] == "anthropic"


def test_round_robin_keys(fake: FakeEndpoint, tmp_path: Path) -> None:
    keys = [("a", GOOD_KEY), ("b", OTHER_KEY)]

    async def go() -> list[str]:
        async with make_oracle(fake.openai_url, tmp_path, keys=keys) as o:
            ids = [(await o.query(f"p{i}")).key_id or "" for i in range(4)]
            pinned = await o.query("pinned", key_index=1)
            return [*ids, pinned.key_id or ""]

    assert run(go()) == ["a", "b", "a", "b", "b"]
    assert fake.keys_seen() == [GOOD_KEY, OTHER_KEY, GOOD_KEY, OTHER_KEY, OTHER_KEY]


def test_query_budget_raises_when_exhausted(fake: FakeEndpoint, tmp_path: Path) -> None:
    async def go() -> tuple[list[Answer | Failure], BudgetExhausted]:
        async with make_oracle(fake.openai_url, tmp_path, Budget(queries=3)) as o:
            outs = [await o.query(f"p{i}") for i in range(3)]
            with pytest.raises(BudgetExhausted) as info:
                await o.query("one too many")
            assert o.remaining().queries == 0
            return outs, info.value

    outs, exc = run(go())
    assert all(isinstance(o, Answer) for o in outs)
    assert exc.limit == "queries" and exc.spent.queries == 3
    assert len(fake.requests) == 3
    last = HarvestLog.read(tmp_path / "harvest.jsonl")[-1]
    assert isinstance(last, ErrorEntry) and last.error_type == "budget" and not last.charged


@pytest.mark.parametrize(
    ("budget", "prices"),
    [
        (Budget(tokens=700), Prices()),
        (Budget(usd=0.0007), Prices(input_per_mtok=1.0, output_per_mtok=1.0)),
        (Budget(queries=13, tokens=5000), Prices()),
    ],
)
def test_budget_never_overspent_under_concurrency(
    fake: FakeEndpoint, tmp_path: Path, budget: Budget, prices: Prices
) -> None:
    async def go() -> tuple[list[Answer | Failure], Spent]:
        o = make_oracle(fake.openai_url, tmp_path, budget, prices=prices, concurrency=8)
        async with o:
            outs = await o.query_many([f"prompt number {i}" for i in range(60)], max_tokens=16)
            return outs, o.spent()

    outs, spent = run(go())
    answers = [o for o in outs if isinstance(o, Answer)]
    refused = [o for o in outs if isinstance(o, Failure)]
    assert answers and refused and all(f.error_type == "budget" for f in refused)
    assert spent.queries == len(answers) == len(fake.requests)
    if budget.tokens is not None:
        assert spent.tokens <= budget.tokens
    if budget.usd is not None:
        assert spent.usd <= budget.usd
    if budget.queries is not None:
        assert spent.queries <= budget.queries
    assert len(pairs(HarvestLog.read(tmp_path / "harvest.jsonl"))) == len(answers)


def test_rate_limit_retry_honours_retry_after(fake: FakeEndpoint, tmp_path: Path) -> None:
    fake.script = ["429:0.2", "ok"]

    async def go() -> tuple[Answer | Failure, Any]:
        async with make_oracle(fake.openai_url, tmp_path) as o:
            return await o.query("p"), o.stats()

    out, stats = run(go())
    assert isinstance(out, Answer) and out.attempts == 2
    assert len(fake.requests) == 2
    assert stats.retries == 1 and stats.waited_s >= 0.2 and stats.errors == {"rate_limit": 1}
    assert stats.spent.queries == 2  # the 429 reached the endpoint: it counts
    err = [e for e in HarvestLog.read(tmp_path / "harvest.jsonl") if isinstance(e, ErrorEntry)]
    assert len(err) == 1
    assert (err[0].error_type, err[0].status, err[0].retry_after) == ("rate_limit", 429, 0.2)
    assert err[0].wait_s is not None and err[0].wait_s >= 0.2 and err[0].charged


def test_retry_after_is_capped(fake: FakeEndpoint, tmp_path: Path) -> None:
    fake.script = ["429:3600", "ok"]

    async def go() -> Answer | Failure:
        async with make_oracle(fake.openai_url, tmp_path, backoff_max=0.05) as o:
            return await o.query("p")

    assert run(go()).attempts == 2
    err = next(e for e in HarvestLog.read(tmp_path / "harvest.jsonl") if isinstance(e, ErrorEntry))
    assert err.retry_after == 3600 and err.wait_s == 0.05


def test_server_errors_retry_up_to_max_attempts(fake: FakeEndpoint, tmp_path: Path) -> None:
    fake.script = ["500"] * 5

    async def go() -> tuple[Answer | Failure, Spent]:
        async with make_oracle(fake.openai_url, tmp_path, max_attempts=3) as o:
            return await o.query("p"), o.spent()

    out, spent = run(go())
    assert isinstance(out, Failure)
    assert (out.error_type, out.status, out.attempts) == ("server", 500, 3)
    assert len(fake.requests) == 3 and spent.queries == 3 and spent.tokens == 0
    errors = [e for e in HarvestLog.read(tmp_path / "harvest.jsonl") if isinstance(e, ErrorEntry)]
    assert [e.attempt for e in errors] == [1, 2, 3]
    assert [e.wait_s is not None for e in errors] == [True, True, False]


def test_backoff_is_seeded(fake: FakeEndpoint, tmp_path: Path) -> None:
    def waits(sub: str) -> list[float | None]:
        fake.script = ["500", "500", "ok"]
        (tmp_path / sub).mkdir()

        async def go() -> None:
            async with make_oracle(fake.openai_url, tmp_path / sub, seed=3) as o:
                await o.query("p")

        run(go())
        entries = HarvestLog.read(tmp_path / sub / "harvest.jsonl")
        return [e.wait_s for e in entries if isinstance(e, ErrorEntry)]

    first, second = waits("a"), waits("b")
    assert first == second and len(first) == 2


def test_wrong_key_stops_at_once(fake: FakeEndpoint, tmp_path: Path) -> None:
    async def go() -> tuple[list[Answer | Failure], Oracle]:
        async with make_oracle(fake.openai_url, tmp_path, keys=[("attacker-0", BAD_KEY)]) as o:
            outs = await o.query_many([f"p{i}" for i in range(6)])
            outs.append(await o.query("later"))
            return outs, o

    outs, oracle = run(go())
    assert len(fake.requests) == 1  # one probe, never a second request
    assert all(isinstance(o, Failure) and o.error_type == "auth" for o in outs)
    assert sum(o.attempts for o in outs) == 1
    assert oracle.dead and oracle.fatal_error is not None
    assert oracle.fatal_error.status == 401 and "Incorrect API key" in oracle.fatal_error.message
    assert oracle.spent().queries == 1
    text = (tmp_path / "harvest.jsonl").read_text()
    assert BAD_KEY not in text and "BADkey-00" not in text
    assert all(BAD_KEY not in o.message for o in outs if isinstance(o, Failure))
    assert BAD_KEY not in repr(oracle)


def test_one_dead_key_leaves_the_others(fake: FakeEndpoint, tmp_path: Path) -> None:
    keys = [("bad", BAD_KEY), ("good", GOOD_KEY)]

    async def go() -> tuple[list[Answer | Failure], Oracle]:
        async with make_oracle(fake.openai_url, tmp_path, keys=keys) as o:
            outs = [await o.query(f"p{i}") for i in range(4)]
            outs.append(await o.query("pinned to the dead key", key_index=0))
            return outs, o

    outs, oracle = run(go())
    assert [o.key_id for o in outs] == ["bad", "good", "good", "good", "bad"]
    assert [o.ok for o in outs] == [False, True, True, True, False]
    assert not oracle.dead and oracle.fatal_error is not None
    assert fake.keys_seen().count(BAD_KEY) == 1


def test_missing_usage_is_estimated(fake: FakeEndpoint, tmp_path: Path) -> None:
    fake.script = ["nousage"]

    async def go() -> Answer | Failure:
        async with make_oracle(fake.openai_url, tmp_path) as o:
            return await o.query("count these tokens please")

    out = run(go())
    assert isinstance(out, Answer) and out.usage.estimated
    assert out.usage.input_tokens == estimate_tokens("count these tokens please")
    assert out.usage.output_tokens == estimate_tokens(out.text)
    resp = pairs(HarvestLog.read(tmp_path / "harvest.jsonl"))[0]
    assert resp.tokens_estimated


def test_connection_failures_are_retried_but_free(tmp_path: Path) -> None:
    async def go() -> tuple[Answer | Failure, Spent]:
        async with make_oracle(closed_port_url() + "/v1", tmp_path, max_attempts=3) as o:
            return await o.query("p"), o.spent()

    out, spent = run(go())
    assert isinstance(out, Failure) and (out.error_type, out.attempts) == ("connection", 3)
    assert spent.queries == 0
    errors = HarvestLog.read(tmp_path / "harvest.jsonl")[1:]
    assert [e.charged for e in errors if isinstance(e, ErrorEntry)] == [False] * 3


def test_a_query_cancelled_in_flight_is_charged_its_worst_case(
        fake: FakeEndpoint, tmp_path: Path) -> None:
    fake.script = ["sleep:2"]

    async def go() -> tuple[Spent, Spent]:
        async with make_oracle(fake.openai_url, tmp_path) as o:
            task = asyncio.ensure_future(o.query("what is 2+2?", max_tokens=8))
            while not fake.requests:  # the endpoint has it
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return o.spent(), o.stats().spent

    spent, total = run(go())
    worst = (len("what is 2+2?") + 16, 8)
    assert (spent.queries, spent.input_tokens, spent.output_tokens) == (1, *worst)
    assert total == spent
    errors = [e for e in HarvestLog.read(tmp_path / "harvest.jsonl") if isinstance(e, ErrorEntry)]
    assert [(e.error_type, e.charged, e.attempt) for e in errors] == [("interrupted", True, 1)]


def test_a_prompt_about_held_out_content_is_refused_logged_and_free(
        fake: FakeEndpoint, tmp_path: Path) -> None:
    held = {"3+4": "3+4", "4+3": "3+4"}  # content keys, commuted twins included

    def forbids(prompt: str) -> str | None:
        return next((k for w, k in held.items() if w in prompt), None)

    async def go() -> tuple[list[Answer | Failure], Spent]:
        async with make_oracle(fake.openai_url, tmp_path, forbids=forbids) as o:
            outs = [await o.query(p) for p in ("what is 1+2?", "what is 4+3?", "3+4 is?")]
            return outs, o.spent()

    outs, spent = run(go())
    assert [o.ok for o in outs] == [True, False, False]
    assert [o.error_type for o in outs if isinstance(o, Failure)] == ["heldout", "heldout"]
    assert len(fake.requests) == 1 and spent.queries == 1
    entries = HarvestLog.read(tmp_path / "harvest.jsonl")
    refused = [e for e in entries if isinstance(e, ErrorEntry)]
    assert [(e.index, e.error_type, e.charged, e.attempt) for e in refused] == [
        (1, "heldout", False, 0), (2, "heldout", False, 0)]
    assert "'3+4'" in refused[0].message
    fake.reset()
    again, _ = run(go())  # resumed: replayed, nothing sent, nothing written twice
    assert [o.ok for o in again] == [True, False, False] and fake.requests == []
    assert len(HarvestLog.read(tmp_path / "harvest.jsonl")) == len(entries) + 1  # a segment


def test_refusal_is_an_error_not_a_pair(fake: FakeEndpoint, tmp_path: Path) -> None:
    fake.script = ["refuse"]

    async def go() -> tuple[Answer | Failure, Spent]:
        async with make_oracle(fake.openai_url, tmp_path) as o:
            return await o.query("bad idea"), o.spent()

    out, spent = run(go())
    assert isinstance(out, Failure) and out.error_type == "refused"
    assert spent.queries == 1 and spent.tokens > 0
    entries = HarvestLog.read(tmp_path / "harvest.jsonl")
    assert pairs(entries) == []
    assert isinstance(entries[-1], ErrorEntry) and entries[-1].usage is not None


def test_resume_carries_spend_and_indices(fake: FakeEndpoint, tmp_path: Path) -> None:
    """Without replay (``replay=False``), a second session's queries are new ones: the logged
    spend still counts and indices go on. (With replay, see test_replay.py.)"""

    async def session(n: int) -> list[Answer | Failure]:
        async with make_oracle(fake.openai_url, tmp_path, Budget(queries=5), replay=False) as o:
            return await o.query_many([f"p{i}" for i in range(n)])

    first = run(session(3))
    second = run(session(3))
    assert [o.index for o in first] == [0, 1, 2]
    assert [o.ok for o in second] == [True, True, False]
    assert [o.index for o in second if isinstance(o, Answer)] == [3, 4]
    entries = HarvestLog.read(tmp_path / "harvest.jsonl")
    assert sum(isinstance(e, SegmentEntry) for e in entries) == 2
    assert len(pairs(entries)) == 5 and len(fake.requests) == 5


def test_progress_callback_and_notes(fake: FakeEndpoint, tmp_path: Path) -> None:
    seen: list[Spent] = []

    async def go() -> None:
        async with make_oracle(fake.openai_url, tmp_path, on_progress=seen.append) as o:
            o.note("phase 1", n=2)
            await o.query_many(["a", "b"])

    run(go())
    assert [s.queries for s in seen] == [1, 2]
    note = HarvestLog.read(tmp_path / "harvest.jsonl")[1]
    assert note.entry_type == "note" and note.data == {"n": 2}


def test_requests_per_minute_paces(fake: FakeEndpoint, tmp_path: Path) -> None:
    async def go() -> float:
        async with make_oracle(fake.openai_url, tmp_path, requests_per_minute=600) as o:
            start = time.monotonic()
            await o.query_many(["a", "b", "c"])
            return time.monotonic() - start

    assert run(go()) >= 0.2  # three starts 0.1 s apart


def test_bad_arguments(fake: FakeEndpoint, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        make_oracle(fake.openai_url, tmp_path, keys=[])

    async def go() -> None:
        async with make_oracle(fake.openai_url, tmp_path) as o:
            with pytest.raises(ValueError, match="max_tokens"):
                await o.query("p", max_tokens=0)
            with pytest.raises(ValueError, match="key_index"):
                await o.query("p", key_index=3)

    run(go())
    assert fake.requests == []


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_a_200_with_a_cut_json_body_is_charged_logged_and_retried(
        fake: FakeEndpoint, tmp_path: Path, api: str) -> None:
    fake.script = ["malformed", "ok"]
    base = fake.openai_url if api == "openai" else fake.url

    async def go() -> tuple[Answer | Failure, Spent]:
        async with make_oracle(base, tmp_path, api=api) as o:
            out = await o.query("p")
            return out, o.spent()

    out, spent = run(go())
    assert isinstance(out, Answer) and out.attempts == 2
    assert spent.queries == 2  # the endpoint served the cut answer: it is billed
    entries = HarvestLog.read(tmp_path / "harvest.jsonl")
    errors = [e for e in entries if isinstance(e, ErrorEntry)]
    assert [(e.error_type, e.status, e.charged, e.attempt) for e in errors] == [
        ("invalid_response", 200, True, 1)]
    assert "malformed response body" in errors[0].message
    assert sum(isinstance(e, ResponseEntry) for e in entries) == 1  # one row, not two


# ------------------------------------------------------------------------------ accounts


def test_an_attacker_pays_for_each_account_before_its_first_query(fake: FakeEndpoint,
                                                                  tmp_path: Path) -> None:
    # One query's worst case here is (len("p0") + 16) input + 8 output tokens at $0.01 a
    # token = $0.26; it is really charged $0.05 (2 + 3 tokens). $3.50 buys all four prompts.
    # Three accounts at $1.10 take $3.30 of it first: the $0.20 left is below one worst case,
    # so nothing is sent. At $1.00 each, $0.50 is left: enough for all four at $0.05.
    keys = [("a", GOOD_KEY), ("b", OTHER_KEY), ("c", GOOD_KEY)]
    prompts = [f"p{i}" for i in range(4)]

    def campaign(account_usd: float, accounts: bool, where: str) -> tuple[Oracle, list[
            Answer | Failure]]:
        prices = Prices(input_per_mtok=1e4, output_per_mtok=1e4, account_usd=account_usd)

        async def go() -> tuple[Oracle, list[Answer | Failure]]:
            async with make_oracle(fake.openai_url, tmp_path / where, budget=Budget(usd=3.5),
                                   keys=keys, prices=prices, accounts=accounts) as o:
                return o, await o.query_many(prompts, max_tokens=8)

        (tmp_path / where).mkdir()
        return run(go())

    free, outs = campaign(1.1, False, "evaluator")  # an evaluator's keys: no accounts
    assert (free.accounts, free.accounts_usd) == (0, 0.0)
    assert all(isinstance(o, Answer) for o in outs)
    dear, outs = campaign(1.1, True, "dear")
    assert (dear.accounts, dear.accounts_usd) == (3, pytest.approx(3.3))
    assert all(isinstance(o, Failure) and o.error_type == "budget" for o in outs)
    assert dear.stats().spent == Spent(usd=pytest.approx(3.3))  # no query, no token
    assert len(fake.requests) == 4  # the evaluator's four; none from the dear campaign
    paid, outs = campaign(1.0, True, "paid")
    assert all(isinstance(o, Answer) for o in outs)
    assert paid.stats().spent.usd == pytest.approx(3.0 + 4 * 0.05)
