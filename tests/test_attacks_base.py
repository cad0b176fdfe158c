"""Shared harness for the attack tests (a real reference server with a tiny random model, the
real Oracle over the real openai SDK) and tests of :mod:`attacks.base`."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from attacks import ATTACKS, AttackContext
from attacks.base import TRAIN_PROMPT_NOTE, Tracker, queries_left, train_pairs
from extractbench.budget import Budget, Prices, Spent
from extractbench.clients import Endpoint
from extractbench.defenses import AuditLog, Defense, DefenseStack, Rejection, RequestContext
from extractbench.harvest import Entry, ErrorEntry, HarvestLog, NoteEntry, ResponseEntry
from extractbench.lm import TinyLM
from extractbench.oracle import Oracle
from extractbench.server import RunningServer, ServedModel, create_app
from extractbench.students import TrainPair
from extractbench.tasks import prompt_hash
from extractbench.tasks.arithmetic import Arithmetic

SIZES = {"attack_pool": 400, "heldout": 60, "benign": 20}
PRICES = Prices(input_per_mtok=2.0, output_per_mtok=8.0)
BUDGETS = {
    "queries": Budget(queries=24),
    "tokens": Budget(tokens=1500),
    "usd": Budget(usd=0.004),
}


class Blocker(Defense):
    """Lets each key's first ``after`` requests through, then refuses with ``status``."""

    name = "test-blocker"

    def __init__(self, status: int | None, after: int) -> None:
        self.status, self.after = status, after

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        if self.status is None or ctx.index < self.after:
            return None
        if self.status == 429:
            return Rejection.rate_limited("too many requests", retry_after=0.01)
        return Rejection.forbidden("this key is banned for extraction")


@dataclass
class Outcome:
    stop: str
    spent: Spent
    budget: Budget
    entries: list[Entry]
    heldout_hashes: set[str]
    audit: AuditLog
    ctx: AttackContext
    errors: dict[str, int] = field(default_factory=dict)

    def sent_hashes(self) -> list[str]:
        out = []
        for e in self.entries:
            if isinstance(e, ResponseEntry):
                out.append(e.request.prompt_hash)
            elif isinstance(e, ErrorEntry) and e.attempt > 0:
                out.append(e.prompt_hash)
        return out

    def responses(self) -> list[ResponseEntry]:
        return [e for e in self.entries if isinstance(e, ResponseEntry)]

    def notes(self) -> list[str]:
        return [e.text for e in self.entries if isinstance(e, NoteEntry)]

    def within_budget(self) -> bool:
        b, s = self.budget, self.spent
        return ((b.queries is None or s.queries <= b.queries)
                and (b.tokens is None or s.tokens <= b.tokens)
                and (b.usd is None or s.usd <= b.usd + 1e-12))

    def used_share(self) -> float:
        """The largest share of any set limit that was spent."""
        b, s = self.budget, self.spent
        shares = [s.queries / b.queries if b.queries else 0.0,
                  s.tokens / b.tokens if b.tokens else 0.0,
                  s.usd / b.usd if b.usd else 0.0]
        return max(shares)


def task(seed: int = 0, digits: int = 2, sizes: dict[str, int] | None = None) -> Arithmetic:
    return Arithmetic(seed, sizes or SIZES, digits=digits, ops=("+", "-"))


@contextmanager
def served(model: TinyLM, n_keys: int = 1, block: int | None = None, after: int = 5,
           extra: Sequence[Defense] = ()) -> Iterator[tuple[Endpoint, list[tuple[str, str]],
                                                            AuditLog]]:
    """A reference server for ``model`` behind a :class:`Blocker` (and ``extra`` defenses)."""
    keys = [(f"attacker-{i}", f"sk-test-attacker-{i}-5be0c1") for i in range(n_keys)]
    audit = AuditLog()
    stack = DefenseStack([Blocker(block, after), *extra], audit)
    app = create_app({"m": ServedModel("m", model)}, {s: k for k, s in keys}, stack)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model is fastest on one thread
    try:
        with RunningServer(app) as server:
            yield Endpoint(api="openai", base_url=server.openai_base_url, model="m",
                           timeout_s=20), keys, audit
    finally:
        torch.set_num_threads(threads)


def run_attack(model: TinyLM, tmp_path: Path, name: str, budget: Budget,
               params: dict[str, Any] | None = None, *, n_keys: int = 1,
               block: int | None = None, after: int = 5, the_task: Arithmetic | None = None,
               ctx_kw: dict[str, Any] | None = None, extra: Sequence[Defense] = ()) -> Outcome:
    """Run attack ``name`` once, like the runner does, and return what happened."""
    t = the_task or task()
    heldout = {prompt_hash(i.prompt) for i in t.split("heldout")}
    path = tmp_path / f"{name}-{budget.label()}-{block}.jsonl"
    params = params or {}
    with served(model, n_keys, block, after, extra) as (endpoint, keys, audit):
        oracle = Oracle(endpoint, keys, budget, HarvestLog(path), prices=PRICES, concurrency=4,
                        max_attempts=2, backoff_base=0.01, backoff_max=0.05, attack=name)
        kw: dict[str, Any] = {"seed_prompts": [i.prompt for i in t.split("attack_pool")[:6]],
                              "may_send": lambda p: prompt_hash(p) not in heldout,
                              **(ctx_kw or {})}
        ctx = AttackContext(
            oracle=oracle, pool=[i.prompt for i in t.split("attack_pool")], task=t.name,
            max_tokens=t.max_answer_tokens, rng=random.Random(0), params=params, **kw,
        )
        attack = ATTACKS.get(name)(**params)

        async def go() -> str:
            try:
                return await attack.run(ctx)
            finally:
                await oracle.aclose()

        stop = asyncio.run(go())
    return Outcome(stop=stop, spent=oracle.spent(), budget=budget,
                   entries=HarvestLog.read(path), heldout_hashes=heldout, audit=audit, ctx=ctx,
                   errors=oracle.stats().errors)


def check_campaign(out: Outcome, min_share: float = 0.5) -> None:
    """What every attack owes the benchmark: within budget, the budget actually used, no
    held-out prompt sent."""
    assert out.within_budget(), (out.spent, out.budget)
    assert out.used_share() >= min_share, (out.stop, out.spent, out.budget)
    assert not set(out.sent_hashes()) & out.heldout_hashes
    assert out.responses()


def check_blocked(out: Outcome) -> None:
    """A blocked campaign stops by itself, says why, and keeps what it harvested."""
    assert out.within_budget()
    assert "refused" in out.stop or "blocked" in out.stop or "retired" in out.stop, out.stop
    assert any(n.startswith("stopping:") for n in out.notes()), out.notes()
    assert out.responses()


# -- tests of attacks.base ----------------------------------------------------------------


def test_every_builtin_attack_is_registered() -> None:
    assert set(ATTACKS.names()) >= {"random-pool", "synthetic", "cot-coercion",
                                    "logprob-harvest", "active", "stealth"}
    for entry in ATTACKS.entries():
        assert entry.description, entry.name


def test_train_pairs_apply_notes_and_drop_filler(tiny_lm: TinyLM, tmp_path: Path) -> None:
    with served(tiny_lm) as (endpoint, keys, _):
        oracle = Oracle(endpoint, keys, Budget(queries=3), HarvestLog(tmp_path / "h.jsonl"))
        ctx = AttackContext(oracle, ["a"], "arithmetic", 4, random.Random(0))

        async def go() -> None:
            async with oracle:
                outs = await oracle.query_many(["Q1 sent", "Q2 sent", "filler"], max_tokens=3,
                                               top_logprobs=2)
                ctx.train_on(outs[0].index, "Q1")
                ctx.train_on(outs[2].index, None)

        asyncio.run(go())
    got = train_pairs(HarvestLog.read(tmp_path / "h.jsonl"))
    assert [p.prompt for p in got] == ["Q1", "Q2 sent"]
    assert all(isinstance(p, TrainPair) and p.top_logprobs for p in got)
    assert all(len(alts) == 2 for p in got for alts in p.top_logprobs or [])


def test_tracker_stops_on_budget_dead_keys_and_dry_rounds(tiny_lm: TinyLM,
                                                          tmp_path: Path) -> None:
    from extractbench.oracle import Answer, Failure, Usage

    with served(tiny_lm) as (endpoint, keys, _):
        oracle = Oracle(endpoint, keys, Budget(queries=3), HarvestLog(tmp_path / "h.jsonl"))
        ctx = AttackContext(oracle, [], "arithmetic", 4, random.Random(0))
        tracker = Tracker(ctx, patience=2)
        ok = Answer(0, "attacker-0", "p", "1", "stop", None, Usage(1, 1, False, 0.0), 1)
        limited = Failure(1, "attacker-0", "p", "rate_limit", "slow", 429, attempts=2)
        budget = Failure(2, "attacker-0", "p", "budget", "no room")
        assert tracker.update([ok, limited]) is None
        assert tracker.update([limited]) is None
        assert tracker.update([ok]) is None  # an answer resets the dry count
        assert tracker.update([limited]) is None
        stop = tracker.update([limited])
        assert stop is not None and stop.startswith("blocked: 2 rounds")
        assert Tracker(ctx).update([ok, budget]) == "budget exhausted"
        asyncio.run(oracle.aclose())
    texts = [e.text for e in HarvestLog.read(tmp_path / "h.jsonl") if isinstance(e, NoteEntry)]
    assert "first rate_limit error" in texts
    assert any(t.startswith("stopping: blocked") for t in texts)


def test_queries_left_follows_the_binding_limit(tiny_lm: TinyLM, tmp_path: Path) -> None:
    with served(tiny_lm) as (endpoint, keys, _):
        # worst case of one query: 84 prompt bytes + 16 overhead in, 16 out
        for budget, want in [(Budget(queries=7), 7), (Budget(tokens=1000), 1000 // 116),
                             (Budget(usd=0.001), int(0.001 / (100e-6 + 16 * 2e-6))),
                             (Budget(usd=1.0, queries=50), 50)]:
            oracle = Oracle(endpoint, keys, budget, HarvestLog(tmp_path / "q.jsonl"),
                            prices=Prices(input_per_mtok=1.0, output_per_mtok=2.0))
            try:
                ctx = AttackContext(oracle, [], "arithmetic", 16, random.Random(0))
                assert queries_left(ctx, prompt_bytes=84, max_tokens=16) == want
            finally:
                asyncio.run(oracle.aclose())


def test_train_prompt_note_name_is_stable() -> None:
    # the runner and saved harvests rely on this name
    assert TRAIN_PROMPT_NOTE == "train_prompt"


@pytest.mark.parametrize("name", ["random-pool", "synthetic", "cot-coercion", "logprob-harvest",
                                  "active", "stealth"])
def test_bad_params_are_one_line_errors(name: str) -> None:
    bad = {"random-pool": {"batch": 0}, "synthetic": {"mode": "dream"},
           "cot-coercion": {"fallback": "x"}, "logprob-harvest": {"top_logprobs": 99},
           "active": {"first": 0}, "stealth": {"paraphrase": 2.0}}[name]
    with pytest.raises(ValueError) as e:
        ATTACKS.get(name)(**bad)
    msg = str(e.value)
    assert "\n" not in msg and name.split("-")[0] in msg
