"""One cell's campaign: the attack through the oracle (and, on a defended profile, the benign
users alongside it, against the same defense state), harvested to ``harvest/<cell>.jsonl``."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extractbench.attacks import ATTACKS, AttackContext
from extractbench.campaign.oracle import Oracle, OracleStats, RateLimits, RetryPolicy, Segment
from extractbench.campaign.simclock import SimClock
from extractbench.config.plan import Cell
from extractbench.config.scenario import Scenario
from extractbench.logs.harvest import HarvestLog
from extractbench.measure.fleet import Fleet, RunError
from extractbench.measure.progress import Progress
from extractbench.measure.tasks import public_examples
from extractbench.measure.threads import serving_threads
from extractbench.tasks import HeldOutContent, Task

__all__ = ["Collected", "collect"]


@dataclass
class Collected:
    """What a campaign left: why the attack stopped, the oracle's counts, the benign run."""

    stop_reason: str
    stats: OracleStats
    benign: Any
    """The benign users' :class:`~extractbench.campaign.benign.BenignResult`, or None."""
    accounts: int = 0
    """The attacker accounts (keys) the campaign paid for."""
    accounts_usd: float = 0.0
    """What they cost (inside ``stats.spent.usd``)."""
    sim_s: float | None = None
    """The campaign's simulated length (``None`` on the wall clock)."""


def known_defenses(specs: Any, knows: str) -> list[tuple[str, dict[str, Any]]]:
    """What an attacker with threat model ``knows`` sees of a defense stack."""
    if knows == "nothing":
        return []
    return [(d.name, dict(d.params) if knows == "params" else {}) for d in specs]


def collect(sc: Scenario, fleet: Fleet, cell: Cell, task: Task, harvest_path: Path,
            run_dir: Path, run_id: str, progress: Progress,
            mixed: dict[str, Task] | None = None) -> Collected:
    """Run the cell's attack (with benign traffic on a defended profile) to completion.
    ``mixed``: the other tasks benign cohorts also ask about (their ``mix``), by key."""
    from extractbench.campaign.benign import run_benign
    from extractbench.measure.calibration import cohort_plans

    live = fleet.live[cell.endpoint]
    spec = sc.attacks[cell.attack]
    keys = live.attacker_keys[: spec.keys]
    log = HarvestLog(harvest_path)
    progress.start_cell(cell.id, cell.budget.queries)
    endpoint = fleet.endpoint_for(live, cell.endpoint, cell.task)
    hygiene = HeldOutContent(task)
    sim = (SimClock(sc.clock.request_s, lanes=max(1, spec.concurrency // len(keys)),
                    max_wait_s=sc.clock.max_wait_s,
                    serial=live.pipeline is not None and live.pipeline.stack.ordered)
           if live.simulated else None)
    oracle = Oracle(
        endpoint, keys, cell.budget, log, prices=live.prices,
        concurrency=spec.concurrency, retry=RetryPolicy(seed=cell.seed),
        rates=RateLimits(live.rpm, live.tpm), on_progress=progress.spent,
        segment=Segment(run_id=run_id, cell_id=cell.id, attack=spec.name),
        forbids=hygiene.forbids, accounts=True, sim=sim,
    )
    attack = ATTACKS.get(spec.name)(**spec.params)
    benign_split = [i.prompt for i in task.split("benign")]
    ctx = AttackContext(
        oracle=oracle, pool=[i.prompt for i in task.split("attack_pool")], task=task.name,
        max_tokens=fleet.answer_tokens(cell.endpoint, task),
        rng=random.Random(f"{cell.seed}/{cell.attack}/{cell.task}"), params=dict(spec.params),
        seed_prompts=public_examples(task),
        reasoning_suffix=getattr(task, "reasoning_suffix", None),
        reasoning_max_tokens=getattr(task, "reasoning_max_tokens", None),
        may_send=hygiene.may_send,  # the oracle refuses what slips through
        defenses=known_defenses(sc.endpoints[cell.endpoint].defenses, spec.knows),
    )
    with_benign = live.pipeline is not None and bool(benign_split)
    plans = cohort_plans(sc.benign_traffic, fleet.keys.cohort_of, task, mixed, cell.task)
    routes = {key: (fleet.model_for(cell.endpoint, key), other.max_answer_tokens)
              for key, other in (mixed or {}).items()}

    async def go() -> tuple[str, Any]:
        stop = asyncio.Event()

        async def attack_then_stop() -> str:
            try:
                return await attack.run(ctx)
            finally:
                stop.set()
                if sim is not None:
                    sim.finish()

        try:
            if not with_benign:
                return await attack_then_stop(), None
            benign_log = run_dir / "benign" / f"{cell.slug}.jsonl"
            benign_log.parent.mkdir(exist_ok=True)

            reason, benign = await asyncio.gather(
                attack_then_stop(),
                run_benign(endpoint, fleet.keys.benign, benign_split,
                           max_tokens=task.max_answer_tokens,
                           pacing_s=sc.benign_traffic.pacing_s, stop=stop,
                           seed=cell.seed,
                           min_per_key=sc.benign_traffic.min_queries_per_user,
                           log_path=benign_log, plans=plans, follow=sim,
                           routes=routes),
            )
            return reason, benign
        finally:
            await oracle.aclose()

    stop_reason, benign = serving_threads(lambda: asyncio.run(go()))
    if (oracle.fatal_error is not None and oracle.stats().answers == 0
            and live.pipeline is None):
        raise RunError(f"endpoint {cell.endpoint!r}: {oracle.fatal_error.message} "
                       f"({oracle.fatal_error.error_type}; check the API key)")
    return Collected(stop_reason, oracle.stats(), benign, oracle.accounts, oracle.accounts_usd,
                     sim.elapsed() if sim is not None else None)
