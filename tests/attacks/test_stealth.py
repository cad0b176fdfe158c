"""``stealth`` against the real reference server (tiny random model)."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from extractbench.attacks.base import train_pairs
from extractbench.attacks.stealth import GENERIC_FILLER, paraphrase
from extractbench.config.budget import Budget
from extractbench.defenses import Defense, RequestContext
from extractbench.reference.lm import TinyLM
from extractbench.testing.attacks import BUDGETS, check_blocked, check_campaign, run_attack, task
from extractbench.types import Generation


def test_paraphrase_keeps_the_content() -> None:
    rng = random.Random(0)
    prompt = "What is 47 + 38? Answer with the number only."
    outs = {paraphrase(prompt, rng) for _ in range(40)}
    assert prompt not in outs and len(outs) > 10
    assert all("47 + 38" in o for o in outs)


@pytest.mark.parametrize("kind", list(BUDGETS))
def test_within_budget_and_no_heldout(tiny_lm: TinyLM, tmp_path: Path, kind: str) -> None:
    out = run_attack(tiny_lm, tmp_path, "stealth", BUDGETS[kind], n_keys=3)
    check_campaign(out, min_share=0.8)


def test_spreads_keys_mixes_filler_and_trains_on_originals(tiny_lm: TinyLM,
                                                           tmp_path: Path) -> None:
    out = run_attack(tiny_lm, tmp_path, "stealth", Budget(queries=60),
                     {"benign_share": 0.25, "paraphrase": 0.5}, n_keys=3)
    per_key = Counter(e.key_id for e in out.responses())
    assert set(per_key) == {"attacker-0", "attacker-1", "attacker-2"}
    assert max(per_key.values()) - min(per_key.values()) <= 12
    sent = [e.request.prompt for e in out.responses()]
    filler = [p for p in sent if p in GENERIC_FILLER]
    pool = {i.prompt for i in task().split("attack_pool")}
    reworded = [p for p in sent if p not in pool and p not in GENERIC_FILLER]
    assert 5 <= len(filler) <= 30 and len(reworded) >= 10
    pairs = train_pairs(out.entries)
    assert len(pairs) == len(sent) - len(filler)
    assert all(p.prompt in pool for p in pairs)  # paraphrases train on their original


class Narrow(Defense):
    """A model that only understands the task's own phrasing: paraphrases get garbage."""

    name = "test-narrow"

    def transform(self, ctx: RequestContext, generations: list[Generation]) -> list[Generation]:
        if ctx.prompt.startswith(("What is", "Compute", "Calculate")):
            return [replace(g, text="42", finish_reason="stop") for g in generations]
        return [replace(g, text="1111111", finish_reason="length") for g in generations]


def test_paraphrases_less_when_they_get_worse_answers(tiny_lm: TinyLM, tmp_path: Path) -> None:
    out = run_attack(tiny_lm, tmp_path, "stealth", Budget(queries=200),
                     {"paraphrase": 0.5, "benign_share": 0.0}, n_keys=2, extra=[Narrow()])
    assert any("paraphrasing less" in n for n in out.notes())
    sent = [e.request.prompt for e in out.responses()]
    pool = {i.prompt for i in task().split("attack_pool")}
    reworded_first = sum(p not in pool for p in sent[:50])
    reworded_last = sum(p not in pool for p in sent[-50:])
    assert reworded_last < reworded_first / 2
    assert all(p.response == "42" for p in train_pairs(out.entries))  # garbage is not learned


def test_paces_each_key(tiny_lm: TinyLM, tmp_path: Path) -> None:
    t0 = time.monotonic()
    out = run_attack(tiny_lm, tmp_path, "stealth", Budget(queries=12),
                     {"per_key_rpm": 600, "jitter": 0.0, "benign_share": 0.0}, n_keys=2)
    # 600 rpm = one request per 0.1 s per key: 6 per key take at least 0.5 s
    assert time.monotonic() - t0 >= 0.5
    assert out.spent.queries == 12


def test_retires_banned_keys_and_goes_on_with_the_rest(tiny_lm: TinyLM, tmp_path: Path) -> None:
    out = run_attack(tiny_lm, tmp_path, "stealth", Budget(queries=1000),
                     {"per_key_batch": 4}, n_keys=3, block=403, after=6)
    check_blocked(out)
    assert sum("key retired" in n for n in out.notes()) == 3
    assert Counter(e.key_id for e in out.responses()) == {f"attacker-{i}": 6 for i in range(3)}


def test_max_per_key_caps_each_key(tiny_lm: TinyLM, tmp_path: Path) -> None:
    out = run_attack(tiny_lm, tmp_path, "stealth", Budget(queries=100),
                     {"max_per_key": 5, "per_key_batch": 3}, n_keys=2)
    assert out.stop == "every key retired"
    assert out.spent.queries == 10


@pytest.mark.parametrize("status", [403, 429])
def test_survives_a_blocking_defense(tiny_lm: TinyLM, tmp_path: Path, status: int) -> None:
    out = run_attack(tiny_lm, tmp_path, "stealth", Budget(queries=1000), {"per_key_batch": 4},
                     n_keys=2, block=status)
    check_blocked(out)


def test_adapted_stays_under_the_known_thresholds() -> None:
    from extractbench.attacks.stealth import SAFETY, adapted

    cap, rpm, why = adapted([("detector", {"min_queries": 100, "volume_max": 200,
                                           "volume_window_s": 60}),
                             ("rate-limit", {"requests_per_minute": 120})])
    assert cap == 99 and rpm == pytest.approx(SAFETY * 120) and len(why) == 2
    # the kind alone: the kind's default parameters (the detector tests from its 50th prompt)
    cap, _, _ = adapted([("detector", {})])
    assert cap == 49
    assert adapted([("watermark", {})])[:2] == (None, None)  # nothing to stay under


def test_an_adaptive_stealth_that_knows_the_detector_is_never_flagged(tiny_lm: TinyLM,
                                                                       tmp_path: Path) -> None:
    """Against a blocking detector that tests keys from their 20th prompt (and blocks a key
    past 30 requests), the passive campaign's keys are blocked; told the detector's
    parameters, the adaptive one keeps every key at 19 and is never flagged (it pays with
    its keys: 4 x 19 queries at most)."""
    from extractbench.defenses.detector import Detector

    params = {"action": "block", "min_queries": 20, "test_every": 1, "tests": ["volume"],
              "volume_max": 1000, "volume_window_s": 60, "volume_total": 30}
    passive = run_attack(tiny_lm, tmp_path / "p", "stealth", Budget(queries=200),
                         {"per_key_batch": 4}, n_keys=4, extra=[Detector(**params)])
    adaptive = run_attack(tiny_lm, tmp_path / "a", "stealth", Budget(queries=200),
                          {"per_key_batch": 4, "adapt": True}, n_keys=4,
                          extra=[Detector(**params)],
                          ctx_kw={"defenses": [("detector", params)]})
    assert passive.errors.get("permission", 0) + passive.errors.get("auth", 0) > 0
    assert not adaptive.errors
    sent = Counter(e.key_id for e in adaptive.responses())
    assert set(sent.values()) == {19} and len(sent) == 4
    assert any("adapted to the known defenses" in n for n in adaptive.notes())
