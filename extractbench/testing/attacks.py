"""A harness for testing an attack: a real reference server with a (tiny) model behind an
optional :class:`Blocker`, the real Oracle over the real openai SDK, and the checks every
attack owes the benchmark (:func:`check_campaign`, :func:`check_blocked`).

    out = run_attack(model, tmp_path, "my-attack", Budget(queries=24))
    check_campaign(out)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from extractbench.attacks import ATTACKS, AttackContext
from extractbench.campaign.oracle import Oracle, RetryPolicy, Segment
from extractbench.config.budget import Budget, Prices, Spent
from extractbench.defenses import AuditLog, Defense, DefenseStack, Rejection, RequestContext
from extractbench.endpoints.clients import Endpoint
from extractbench.logs.harvest import Entry, ErrorEntry, HarvestLog, NoteEntry, ResponseEntry
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.tasks import HeldOutContent, prompt_hash
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
    heldout_overlap: int = 0
    """Held-out contents, in any wording, that the harvest's answers ask about."""

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
    keys = [(f"attacker-{i}", f"fake-test-attacker-{i}-5be0c1") for i in range(n_keys)]
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
    hygiene = HeldOutContent(t)
    path = tmp_path / f"{name}-{budget.label()}-{block}.jsonl"
    params = params or {}
    with served(model, n_keys, block, after, extra) as (endpoint, keys, audit):
        oracle = Oracle(endpoint, keys, budget, HarvestLog(path), prices=PRICES, concurrency=4,
                        retry=RetryPolicy(max_attempts=2, backoff_base=0.01, backoff_max=0.05),
                        segment=Segment(attack=name), forbids=hygiene.forbids)
        kw: dict[str, Any] = {"seed_prompts": [i.prompt for i in t.split("attack_pool")[:6]],
                              "may_send": hygiene.may_send,
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
                   heldout_overlap=hygiene.overlap(
                       e.request.prompt for e in HarvestLog.read(path)
                       if isinstance(e, ResponseEntry)),
                   errors=oracle.stats().errors)


def check_campaign(out: Outcome, min_share: float = 0.5) -> None:
    """What every attack owes the benchmark: within budget, the budget actually used, no
    held-out prompt sent."""
    assert out.within_budget(), (out.spent, out.budget)
    assert out.used_share() >= min_share, (out.stop, out.spent, out.budget)
    assert not set(out.sent_hashes()) & out.heldout_hashes
    assert out.heldout_overlap == 0
    assert out.responses()


def check_blocked(out: Outcome) -> None:
    """A blocked campaign stops by itself, says why, and keeps what it harvested."""
    assert out.within_budget()
    assert "refused" in out.stop or "blocked" in out.stop or "retired" in out.stop, out.stop
    assert any(n.startswith("stopping:") for n in out.notes()), out.notes()
    assert out.responses()
