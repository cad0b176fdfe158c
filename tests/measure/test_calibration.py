"""Detection calibrated on benign traffic (issue 14): thresholds set on benign streams at a
target false-positive rate, TPR and AUC against the attacker's keys, through the detector's
own code."""

from __future__ import annotations

import random

import pytest

from extractbench.measure.calibration import (
    Plan,
    auc,
    calibrate,
    planned_stream,
    suspicion,
    threshold,
)

PARAMS = {"tests": ["duplicate", "volume"], "min_queries": 20, "test_every": 5,
          "volume_max": 30, "volume_window_s": 60}
WORDS = ("refund", "login", "battery", "screen", "manual", "upgrade", "noise", "charge", "blue",
         "reset", "delivery", "warranty", "invoice", "password", "cable", "speaker")


def varied(i: int) -> str:
    rng = random.Random(i)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + "?"


@pytest.mark.parametrize(("scores", "fpr", "expected"), [
    ([5, 4, 3, 2, 1], 0.2, 4),       # one of five may exceed: the second highest
    ([5, 4, 3, 2, 1], 0.0, 5),       # none may exceed
    ([1, 1, 1, 1], 0.5, 1),          # ties: nobody exceeds the tied value
])
def test_at_most_the_target_share_of_calibration_scores_exceed_the_threshold(
        scores: list[float], fpr: float, expected: float) -> None:
    thr = threshold(scores, fpr)
    assert thr == expected
    assert sum(s > thr for s in scores) <= fpr * len(scores)


def test_auc_is_the_chance_an_attacker_key_outscores_a_benign_one() -> None:
    assert auc([3, 4], [1, 2]) == 1.0
    assert auc([1], [2, 3]) == 0.0
    assert auc([2], [1, 2, 3]) == 0.5  # one win, one tie, one loss
    assert auc([], [1]) is None


def test_a_templated_campaign_is_told_from_varied_benign_users() -> None:
    # the attacker's keys send one template with other numbers; benign users varied questions
    attacker = {f"attacker-{k}": [(i * 1.0, f"What is {i * 7 + k} + {i * 3}?")
                                  for i in range(60)] for k in range(4)}
    benign = {f"benign-{u}": [(i * 100.0, varied(1000 * u + i)) for i in range(60)]
              for u in range(10)}
    plans = dict.fromkeys(benign, Plan(pacing_s=100.0, min_queries=60))
    prompts = [varied(i) for i in range(5000, 5400)]
    figs = calibrate(PARAMS, attacker, benign, plans, prompts, until=6000.0, cap=60, seed=1,
                     users=40)
    dup = figs["duplicate"]
    assert dup["tpr_1"] == 1.0 and dup["auc"] == 1.0 and dup["auc_tested"] == 1.0
    assert dup["benign_tested"] == 10
    assert dup["fpr_5"] is not None and dup["fpr_5"] <= 0.2
    assert dup["queries_5"] is not None and 20 * 4 <= dup["queries_5"] <= 60 * 4
    # the attacker sends a request a second, the users one in 100 s: volume tells them apart
    # too, with a threshold set by the users' own rate, far below the detector's 30 a minute
    assert figs["volume"]["tpr_5"] == 1.0 and figs["volume"]["auc"] == 1.0
    assert figs["volume"]["threshold_5"] is not None and figs["volume"]["threshold_5"] < 30


def test_running_suspicion_never_falls_and_ends_at_the_final_value() -> None:
    stream = [(float(i), f"What is {i} + {i}?") for i in range(40)]
    final, running = suspicion(PARAMS, stream)
    for test, values in running.items():
        assert values == sorted(values)
        assert values[-1] == final.get(test, float("-inf"))


def test_a_planned_user_sends_its_minimum_then_stops_at_the_end_or_the_cap() -> None:
    prompts = [f"p{i}" for i in range(10)]
    rng = random.Random(0)
    few = planned_stream(Plan(pacing_s=1000.0, min_queries=3), prompts, rng, until=10.0, cap=50)
    assert len(few) == 3  # the minimum, even past the end
    many = planned_stream(Plan(pacing_s=0.01, min_queries=0), prompts, rng, until=1e6, cap=25)
    assert len(many) == 25  # the cap
    burst = planned_stream(Plan(pacing_s=5.0, min_queries=12, burst=4), prompts,
                           random.Random(1), until=0.0, cap=0)
    times = [t for t, _ in burst]
    assert times[0] == times[3] and times[4] == times[7] and times[3] < times[4]


def test_customer_cohorts_send_matched_prompts_where_the_teacher_reads_no_greeting() -> None:
    from extractbench.config.scenario import BenignTraffic
    from extractbench.measure.calibration import cohort_plans
    from extractbench.tasks import TASKS

    traffic = BenignTraffic.model_validate({"cohorts": {
        "c": {"users": 2, "prompts": "customer", "focus": 3}, "m": {"users": 1}}})
    cohort_of = {"benign-c-0": "c", "benign-c-1": "c", "benign-m-0": "m"}
    sizes = {"attack_pool": 50, "heldout": 10, "benign": 10}
    cls = cohort_plans(traffic, cohort_of, TASKS.get("classification")(0, sizes))
    arith = cohort_plans(traffic, cohort_of, TASKS.get("arithmetic")(0, sizes))
    assert [cls[k].prompts for k in sorted(cls)] == ["customer", "customer", "matched"]
    assert {p.prompts for p in arith.values()} == {"matched"}
    assert arith["benign-c-0"].focus == cls["benign-c-0"].focus == 3  # focus stays
