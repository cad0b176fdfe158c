"""Benign traffic (paced users on their own keys, alongside an attack) and the defended
score, against the reference endpoint through the SDK clients."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from extractbench.campaign.benign import defended_score, run_benign
from extractbench.campaign.oracle import Oracle
from extractbench.config.budget import Budget
from extractbench.defenses import Defense, DefenseStack, Rejection, RequestContext
from extractbench.defenses.detector import Detector
from extractbench.defenses.perturb import Perturb
from extractbench.defenses.scripted import Scripted
from extractbench.endpoints.clients import Endpoint
from extractbench.logs.harvest import HarvestLog
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.tasks import TASKS, Task

BENIGN = [(f"benign-{i}", f"fake-bn-{i}-7c3e91d0a2") for i in range(3)]
ATTACKER = ("attacker-0", "fake-at-0-5e6f7a8b9c")
KEYS = {secret: kid for kid, secret in [*BENIGN, ATTACKER]}


class Counter(Defense):
    name = "test-counter"

    def __init__(self) -> None:
        self.by_key: dict[str, int] = {}

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        self.by_key[ctx.key_id] = self.by_key.get(ctx.key_id, 0) + 1
        return None


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread


@pytest.fixture(scope="module")
def task() -> Task:
    return TASKS.get("arithmetic")(0, {"attack_pool": 50, "heldout": 40, "benign": 30},
                                   digits=2, ops=["+"])


@contextmanager
def endpoint(model: TinyLM, task: Task, stages: list[Defense]) -> Iterator[Endpoint]:
    truth = {i.prompt: i.answer for s in ("attack_pool", "heldout", "benign")
             for i in task.split(s)}  # type: ignore[arg-type]
    stack = DefenseStack([Scripted(lambda p: truth.get(p, "0")), *stages])
    app = create_app({"tiny": ServedModel("tiny", model)}, KEYS, stack)
    with RunningServer(app) as srv:
        yield Endpoint(api="openai", base_url=srv.openai_base_url, model="tiny")


def prompts(task: Task) -> list[str]:
    return [i.prompt for i in task.split("benign")]


def test_paced_users_until_stopped(tiny_lm: TinyLM, task: Task, tmp_path: Path) -> None:
    log = tmp_path / "benign.jsonl"

    async def go(ep: Endpoint) -> object:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, stop.set)
        return await run_benign(ep, BENIGN, prompts(task), max_tokens=6, pacing_s=0.02,
                                stop=stop, seed=1, log_path=log)

    with endpoint(tiny_lm, task, []) as ep:
        result = asyncio.run(go(ep))
    from extractbench.campaign.benign import BenignResult

    assert isinstance(result, BenignResult)
    per_key = [len(result.by_key(k)) for k, _ in BENIGN]
    assert all(n >= 2 for n in per_key), per_key
    assert result.answered == result.queries == sum(per_key)
    assert result.score(task, task.split("benign")) == 1.0
    for k, _ in BENIGN:
        mine = result.by_key(k)
        assert [e.index for e in mine] == list(range(len(mine)))
        assert all(a.time < b.time for a, b in itertools.pairwise(mine))
        # each user walks the split in its own order, starting over once through it
        n = len(prompts(task))
        for start in range(0, len(mine), n):
            lap = mine[start:start + n]
            assert len({e.prompt for e in lap}) == len(lap)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == result.queries and lines[0]["entry_type"] == "benign"
    assert all(secret not in log.read_text() for _, secret in BENIGN)


def test_min_and_max_per_key(tiny_lm: TinyLM, task: Task) -> None:
    async def go(ep: Endpoint, **kw: int) -> list[int]:
        stop = asyncio.Event()
        if "min_per_key" in kw:
            stop.set()
        r = await run_benign(ep, BENIGN, prompts(task), max_tokens=6, pacing_s=0.01, stop=stop,
                             seed=0, **kw)
        return [len(r.by_key(k)) for k, _ in BENIGN]

    with endpoint(tiny_lm, task, []) as ep:
        assert asyncio.run(go(ep, min_per_key=3)) == [3, 3, 3]
        assert asyncio.run(go(ep, max_per_key=2)) == [2, 2, 2]


def test_blocked_users_are_recorded_as_errors(tiny_lm: TinyLM, task: Task) -> None:
    async def go(ep: Endpoint) -> object:
        stop = asyncio.Event()
        return await run_benign(ep, BENIGN[:1], prompts(task), max_tokens=6, pacing_s=0.01,
                                stop=stop, seed=0, max_per_key=5)

    det = Detector(tests=["volume"], volume_total=2, action="block")
    with endpoint(tiny_lm, task, [det]) as ep:
        result = asyncio.run(go(ep))
    from extractbench.campaign.benign import BenignResult

    assert isinstance(result, BenignResult)
    assert [e.ok for e in result.entries] == [True, True, False, False, False]
    assert result.errors() == {"permission": 3}
    assert result.refused_keys() == ["benign-0"]
    assert result.entries[2].status == 403
    score = result.score(task, task.split("benign"))
    assert score == pytest.approx(2 / 5)


def test_benign_traffic_interleaves_with_an_attack(tiny_lm: TinyLM, task: Task,
                                                   tmp_path: Path) -> None:
    counter = Counter()

    async def go(ep: Endpoint) -> tuple[list[float], list[float]]:
        stop = asyncio.Event()
        oracle = Oracle(ep, [ATTACKER], Budget(queries=40), HarvestLog(tmp_path / "h.jsonl"),
                        concurrency=1)
        times: list[float] = []

        async def attack() -> None:
            try:
                for p in [i.prompt for i in task.split("attack_pool")][:40]:
                    await oracle.query(p, max_tokens=6)
                    times.append(time.time())
                    await asyncio.sleep(0.01)
            finally:
                stop.set()
                await oracle.aclose()

        _, benign = await asyncio.gather(
            attack(), run_benign(ep, BENIGN, prompts(task), max_tokens=6, pacing_s=0.05,
                                 stop=stop, seed=0))
        return times, [e.time for e in benign.entries]

    with endpoint(tiny_lm, task, [counter]) as ep:
        attack_times, benign_times = asyncio.run(go(ep))
    assert counter.by_key["attacker-0"] == 40
    assert sum(counter.by_key.get(k, 0) for k, _ in BENIGN) == len(benign_times) >= 6
    during = [t for t in benign_times if attack_times[0] < t < attack_times[-1]]
    assert len(during) >= 3  # concurrent with the attack, not before or after it


def test_defended_score_and_utility(tiny_lm: TinyLM, task: Task, tmp_path: Path) -> None:
    items = task.split("heldout")
    counter = Counter()
    with endpoint(tiny_lm, task, [counter]) as ep:
        clean = asyncio.run(defended_score(ep, BENIGN, task, items,
                                           log_path=tmp_path / "clean.jsonl"))
        sent = sum(counter.by_key.values())
        again = asyncio.run(defended_score(ep, BENIGN, task, items,
                                           log_path=tmp_path / "clean.jsonl"))
        assert sum(counter.by_key.values()) == sent == len(items)  # resumed: nothing re-sent
        assert {counter.by_key[k] for k, _ in BENIGN} == {13, 14}  # spread over the keys
    assert clean.value == 1.0 and again.scores == clean.scores
    assert clean.utility(1.0) == 1.0 and clean.utility(0.0) is None
    with endpoint(tiny_lm, task, [Perturb(poison_fraction=0.5)]) as ep:
        poisoned = asyncio.run(defended_score(ep, BENIGN, task, items,
                                              log_path=tmp_path / "poisoned.jsonl"))
    assert 0.25 <= poisoned.value <= 0.75
    assert poisoned.utility(0.9) == pytest.approx(poisoned.value / 0.9)
    assert len(poisoned.scores) == len(items)


def test_bad_arguments(task: Task) -> None:
    ep = Endpoint(api="openai", base_url="http://127.0.0.1:9/v1", model="tiny")

    async def go(**kw: object) -> None:
        args: dict[str, object] = {"max_tokens": 6, "pacing_s": 0.1, "stop": asyncio.Event(),
                                   "seed": 0}
        await run_benign(ep, BENIGN, prompts(task), **{**args, **kw})  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="pacing_s must be > 0"):
        asyncio.run(go(pacing_s=0))
    with pytest.raises(ValueError, match="max_tokens must be >= 1"):
        asyncio.run(go(max_tokens=0))


def test_user_prompts_follow_the_plan() -> None:
    """Matched users ask the whole split and draw nothing from their generator (so the
    streams of matched cohorts are what they always were); customer users open every
    request with their own greeting, none of which an attack sends; focused users ask
    about only their own few items."""
    import random

    from extractbench.attacks.stealth import _PREFIXES
    from extractbench.campaign.benign import CUSTOMER_LEADS, UserPlan, asked, user_prompts

    prompts = [f"Which team? Ticket: item {i}" for i in range(30)]
    rng = random.Random(1)
    state = rng.getstate()
    assert user_prompts(UserPlan(1.0), prompts, rng) == prompts
    assert rng.getstate() == state
    leads_used = set()
    for user in range(20):
        mine = user_prompts(UserPlan(1.0, prompts="customer"), prompts, random.Random(user))
        leads = {lead for lead in CUSTOMER_LEADS for p in mine if p.startswith(lead)}
        assert len(leads) == 1 and [asked(p) for p in mine] == prompts
        leads_used |= leads
    assert len(leads_used) > 3  # users differ
    assert not {p.strip() for p in _PREFIXES if p} & {lead.strip() for lead in CUSTOMER_LEADS}
    slices = [user_prompts(UserPlan(1.0, focus=5), prompts, random.Random(u)) for u in range(4)]
    assert all(len(s) == 5 and set(s) <= set(prompts) for s in slices)
    assert len({tuple(s) for s in slices}) == 4  # each user its own
    with pytest.raises(ValueError, match="matched or customer"):
        user_prompts(UserPlan(1.0, prompts="shouting"), prompts, random.Random(0))


def test_a_mixed_user_asks_each_task_its_share() -> None:
    """A user with a 25% mix of another task asks one of those for every three of its own
    (a third as many as its own), tagged with that task, greeted only where the other task's
    teacher reads past a greeting; its own prompts are drawn exactly as without the mix."""
    import random

    from extractbench.campaign.benign import MixPart, UserPlan, user_prompts, user_requests

    prompts = [f"Which team? Ticket: item {i}" for i in range(30)]
    other = tuple(f"{i}+{i}=" for i in range(100))
    plain = UserPlan(1.0, prompts="customer", focus=12)
    mixed = UserPlan(1.0, prompts="customer", focus=12, mix=(MixPart("arith", other, 0.25),))
    asks = user_requests(mixed, prompts, random.Random(7))
    own = [p for p, task in asks if task is None]
    theirs = [p for p, task in asks if task == "arith"]
    assert own == user_prompts(plain, prompts, random.Random(7))
    assert (len(own), len(theirs)) == (12, 4) and set(theirs) <= set(other)
    assert len(set(theirs)) == 4  # drawn without repeats while the split has enough
    greeted = UserPlan(1.0, prompts="customer", focus=12,
                       mix=(MixPart("arith", other, 0.25, customer=True),))
    lead = own[0][: own[0].index("Which")]
    assert all(p.startswith(lead) for p, task in user_requests(greeted, prompts,
                                                               random.Random(7)))
    # a tiny share still asks at least once; an empty split is refused
    tiny = UserPlan(1.0, mix=(MixPart("arith", other, 0.001),))
    assert sum(t == "arith" for _, t in user_requests(tiny, prompts, random.Random(0))) == 1
    with pytest.raises(ValueError, match="no benign prompts"):
        user_requests(UserPlan(1.0, mix=(MixPart("arith", (), 0.5),)), prompts,
                      random.Random(0))
