"""The hydra cross-account detector (issue 14): keys sending one template at one pace over the
same period are linked into a cluster; users asking varied questions at their own pace are
not; a key is detected at the first sweep that clusters it."""

from __future__ import annotations

import random

import pytest

from extractbench.defenses import DEFENSES
from extractbench.defenses.hydra import Hydra
from extractbench.measure.hydra import MAX_SWEEPS, clusters, sweep, sweep_times

WORDS = ("refund", "login", "battery", "screen", "manual", "upgrade", "noise", "charge", "blue",
         "reset", "delivery", "warranty", "invoice", "password", "cable", "speaker", "order")


def campaign(keys: int, per_key: int, gap: float) -> dict[str, list[tuple[float, str]]]:
    return {f"attacker-{k}": [(i * gap, f"Route ticket {i * keys + k}: my order {i} is late")
                              for i in range(per_key)] for k in range(keys)}


def users(n: int, per_user: int, seed: int = 0) -> dict[str, list[tuple[float, str]]]:
    rng = random.Random(seed)
    out = {}
    for u in range(n):
        gap = rng.uniform(50, 5000)
        out[f"benign-{u}"] = [(rng.uniform(0, 100) + i * gap,
                               " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 12))))
                              for i in range(per_user)]
    return out


@pytest.mark.parametrize("keys", [2, 8, 32])
def test_a_campaign_spread_over_keys_is_one_cluster_and_varied_users_stay_apart(
        keys: int) -> None:
    streams = {**campaign(keys, 30, 4.0), **users(20, 30)}
    found = clusters(streams, Hydra())
    assert found == [{f"attacker-{k}" for k in range(keys)}]
    figs = sweep({}, streams, end=max(s[-1][0] for s in streams.values()),
                 benign=[k for k in streams if k.startswith("benign")])
    assert (figs.attacker_flagged, figs.benign_flagged, figs.mixed_clusters) == (keys, 0, 0)


def test_keys_below_min_queries_are_never_compared() -> None:
    assert clusters(campaign(8, 9, 4.0), Hydra(min_queries=10)) == []


def test_a_key_is_detected_at_the_first_sweep_that_clusters_it() -> None:
    streams = campaign(4, 30, 100.0)  # the tenth request of each key is at 900 s
    figs = sweep({"sweep_s": 300.0, "min_queries": 10}, streams, end=2900.0, benign=[])
    assert figs.detected_sim_s == 900.0
    assert figs.sweeps == len(sweep_times(2900.0, 300.0)) == 10


def test_sweeps_are_capped_and_end_at_the_end() -> None:
    times = sweep_times(10 * 86400.0, 60.0)
    assert len(times) == MAX_SWEEPS and times[-1] == 10 * 86400.0
    assert times == sorted(times)
    assert sweep_times(100.0, 3600.0) == [100.0]


def test_it_changes_no_request_and_is_registered() -> None:
    hydra = DEFENSES.create("hydra", {"min_cluster": 3})
    assert type(hydra).__name__ == "Hydra" and not hydra.ordered
    with pytest.raises(ValueError, match="min_cluster"):
        DEFENSES.create("hydra", {"min_cluster": 1})
