"""Detection calibrated on benign traffic: what a detector's thresholds give at a false-positive
rate a vendor can live with.

A detector's tests each reduce a key's stream of requests to a statistic
(:meth:`~extractbench.defenses.detector.Detector.suspicion`: higher is more suspicious). For one
defended cell:

1. **calibration**: ``CALIBRATION_USERS`` benign streams that are not the cell's own (other
   users of the same cohorts: the same plans, the task's benign prompts in another seeded
   order, over the cell's simulated length) are replayed through a fresh detector with the
   cell's parameters; each test's threshold at a target FPR is the score that at most that
   share of them exceed;
2. **evaluation** on the cell's own streams, replayed the same way: the attacker's keys (from
   the harvest) and the benign users' keys (from the benign log). Per test: the share of
   attacker keys above each threshold (``tpr_1``, ``tpr_5``), the share of the cell's benign
   keys above it (``fpr_1``, ``fpr_5``: the realised rate, which calibration only targets),
   ROC AUC of attacker against benign keys (``auc``; ``auc_tested`` against only the benign
   keys the test computed a statistic for; a light user below ``min_queries`` is an easy
   negative, ``benign_tested`` counts the others), and the attacker queries until its first
   key crosses the 5% threshold (``queries_5``).

Replaying reads only prompts and simulated times, the two things the detector sees, so it
needs no endpoint; it runs the detector's own code. With one attacker key, TPR is 0 or 1 and
AUC is that key's rank among the benign ones: read a multi-key attack for a rate.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from extractbench.campaign.benign import MixPart, gap_after, user_prompts
from extractbench.campaign.benign import UserPlan as Plan
from extractbench.defenses.base import RequestContext
from extractbench.defenses.detector import Detector
from extractbench.logs.harvest import Entry, ErrorEntry, ResponseEntry
from extractbench.types import SamplingParams

__all__ = ["CALIBRATION_USERS", "TARGETS", "Plan", "calibrate", "stream_of_harvest"]

CALIBRATION_USERS = 100
"""Benign calibration streams per cell (drawn across the cohorts in their proportions)."""
TARGETS = (0.01, 0.05)
"""The false-positive rates thresholds are set at."""

Stream = list[tuple[float, str]]
"""A key's requests in order: (simulated time, prompt)."""


def stream_of_harvest(entries: Iterable[Entry]) -> dict[str, Stream]:
    """Each attacker key's attempts (answered or refused, not the unsent) in the order sent."""
    out: dict[str, list[tuple[float, int, int, str]]] = {}
    for e in entries:
        if isinstance(e, ResponseEntry):
            t, prompt, attempt = e.sim_s, e.request.prompt, e.attempt
        elif isinstance(e, ErrorEntry) and e.attempt > 0 and e.key_id is not None:
            t, prompt, attempt = e.sim_s, e.prompt, e.attempt
        else:
            continue
        if e.key_id is None or t is None:
            continue
        out.setdefault(e.key_id, []).append((t, e.index, attempt, prompt))
    return {k: [(t, p) for t, _, _, p in sorted(v)] for k, v in out.items()}


def planned_stream(plan: Plan, prompts: Sequence[str], rng: random.Random, until: float,
                   cap: int) -> Stream:
    """What a benign user with ``plan`` sends over ``until`` simulated seconds, at most
    ``cap`` requests (unless its minimum is more): the campaign's rule for its users."""
    out: Stream = []
    order: list[str] = []
    prompts = user_prompts(plan, prompts, rng)
    t = rng.random() * plan.pacing_s * plan.burst
    while len(out) < plan.min_queries or (t < until and len(out) < cap):
        if not order:
            order = list(prompts)
            rng.shuffle(order)
        out.append((t, order.pop()))
        t += gap_after(plan, len(out) - 1, rng)
    return out


def suspicion(params: Mapping[str, Any], stream: Stream) -> tuple[dict[str, float],
                                                                 dict[str, list[float]]]:
    """A fresh detector with ``params`` (acting on nobody) over ``stream``: each test's final
    suspicion, and its running value after every request."""
    det = Detector(**{**params, "action": "none"})
    running: dict[str, list[float]] = {t: [] for t in det.tests}
    sampling = SamplingParams(temperature=0.0, max_tokens=16)
    for i, (t, prompt) in enumerate(stream):
        det.check_request(RequestContext(api="openai", route="/v1/chat/completions",
                                         key_id="k", index=i, model="m", prompt=prompt,
                                         params=sampling, time=t, simulated=True))
        now = det.suspicion("k")
        for test in det.tests:
            running[test].append(now.get(test, float("-inf")))
    return det.suspicion("k"), running


def threshold(scores: Sequence[float], fpr: float) -> float:
    """The smallest score that at most ``fpr`` of ``scores`` exceed (flag: score > it)."""
    ranked = sorted(scores, reverse=True)
    allowed = int(fpr * len(ranked))  # how many may exceed it
    return ranked[allowed] if allowed < len(ranked) else float("-inf")


def auc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """P(a positive scores above a negative), ties counting half (Mann-Whitney)."""
    if not positive or not negative:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return wins / (len(positive) * len(negative))


def calibrate(params: Mapping[str, Any], attacker: Mapping[str, Stream],
              benign: Mapping[str, Stream], plans: Mapping[str, Plan],
              prompts: Sequence[str], *, until: float, cap: int, seed: int,
              users: int = CALIBRATION_USERS) -> dict[str, dict[str, float | int | None]]:
    """Per detector test, the calibrated figures of one cell (see the module docstring):
    ``threshold_1``, ``tpr_1``, ``fpr_1``, ``threshold_5``, ``tpr_5``, ``fpr_5``, ``auc``,
    ``auc_tested``, ``benign_tested``, ``queries_5`` (``None``: no attacker key crossed).
    ``plans`` maps each benign key of the cell to its cohort's plan; calibration users are
    drawn from them in turn."""
    if not plans:
        return {}
    keys = sorted(plans)
    calib = [planned_stream(plans[keys[i % len(keys)]], prompts,
                            random.Random(f"{seed}/calibration/{i}"), until, cap)
             for i in range(users)]
    calib_scores = [suspicion(params, s)[0] for s in calib]
    attack = {k: suspicion(params, s) for k, s in attacker.items()}
    own = [suspicion(params, s)[0] for s in benign.values()]
    tests = Detector(**{**params, "action": "none"}).tests
    out: dict[str, dict[str, float | int | None]] = {}
    for test in tests:
        low = float("-inf")
        cal = [c.get(test, low) for c in calib_scores]
        pos = [a[0].get(test, low) for a in attack.values()]
        neg = [b.get(test, low) for b in own]
        figures: dict[str, float | int | None] = {
            "auc": auc(pos, neg),
            # against the users the test could see at all: a light user it never computed
            # for is an easy negative that flatters the plain AUC
            "auc_tested": auc(pos, [n for n in neg if n != low]),
            "benign_tested": sum(n != low for n in neg),
        }
        for target in TARGETS:
            thr = threshold(cal, target)
            tag = f"{round(target * 100)}"
            figures[f"threshold_{tag}"] = thr if thr != low else None
            figures[f"tpr_{tag}"] = (sum(p > thr for p in pos) / len(pos)) if pos else None
            figures[f"fpr_{tag}"] = (sum(n > thr for n in neg) / len(neg)) if neg else None
        thr5 = threshold(cal, TARGETS[1])
        crossed = [next((i + 1 for i, v in enumerate(run[1][test]) if v > thr5), None)
                   for run in attack.values()]
        # queries the campaign had sent, over all its keys in step, when its first key crossed
        hits = [c * len(attack) for c in crossed if c is not None]
        figures["queries_5"] = min(hits) if hits else None
        out[test] = figures
    return out


def benign_streams(entries: Iterable[Any]) -> dict[str, Stream]:
    """Each benign key's requests in order, from :class:`~extractbench.campaign.benign.
    BenignEntry` objects or their JSON lines (``key_id``, ``index``, ``time``, ``prompt``)."""
    out: dict[str, list[tuple[int, float, str]]] = {}
    for e in entries:
        d: Mapping[str, Any] = e if isinstance(e, dict) else vars(e)
        out.setdefault(str(d["key_id"]), []).append(
            (int(d["index"]), float(d["time"]), str(d["prompt"])))
    return {k: [(t, p) for _, t, p in sorted(v)] for k, v in out.items()}


def cohort_plans(benign_traffic: Any, cohort_of: Mapping[str, str],
                 task: Any = None, mixed: Mapping[str, Any] | None = None,
                 own: str | None = None) -> dict[str, Plan]:
    """Each benign key's plan, from a scenario's ``benign_traffic`` and the key -> cohort
    map. On a ``task`` whose teacher does not answer customer wordings (``customer_wording``
    false) a customer cohort sends matched prompts: otherwise its utility would measure the
    teacher, not the defense. ``mixed``: the tasks (by scenario key) a cohort's ``mix`` names,
    built for the cell's seed; a share naming ``own`` (the cell's task key) is its own."""
    cohorts = benign_traffic.plan()
    customer = task is None or bool(getattr(task, "customer_wording", False))

    def parts(cohort: Any) -> tuple[MixPart, ...]:
        return tuple(
            MixPart(key, tuple(i.prompt for i in (mixed or {})[key].split("benign")), share,
                    cohort.prompts == "customer"
                    and bool(getattr((mixed or {})[key], "customer_wording", False)))
            for key, share in (cohort.mix or {}).items() if key != own)

    mix = {name: parts(cohort) for name, cohort in cohorts.items()}
    return {key: Plan(cohorts[name].pacing_s, cohorts[name].min_queries_per_user,
                      burst=cohorts[name].burst,
                      prompts=cohorts[name].prompts if customer else "matched",
                      focus=cohorts[name].focus, mix=mix[name])
            for key, name in cohort_of.items()}
