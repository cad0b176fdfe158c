"""Splits by content (:mod:`extractbench.tasks.splits`): a split's items depend on its own
size only, so changing one size moves no item between splits; held-out, benign and the pool
are disjoint by content; the shipped scenarios and teacher evaluations fit."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from extractbench.tasks import SPLITS, TASKS, Task
from extractbench.tasks.splits import RESERVED, assign, position

ROOT = Path(__file__).resolve().parents[2]

# small enough to build often, large enough for varied sizes; enumerated and drawn spaces
FAMILIES: dict[str, tuple[dict[str, object], dict[str, int]]] = {
    "arithmetic": ({"digits": 2, "ops": ["+"]}, {"attack_pool": 2000, "heldout": 300,
                                                 "benign": 200}),
    "arithmetic-drawn": ({"digits": 2, "ops": ["+", "-"], "terms": 3},
                         {"attack_pool": 1000, "heldout": 200, "benign": 100}),
    "cipher": ({"min_len": 4, "max_len": 6}, {"attack_pool": 1000, "heldout": 200, "benign": 100}),
    "knowledge": ({"entities": 60}, {"attack_pool": 600, "heldout": 200, "benign": 100}),
    "classification": ({"products": 60}, {"attack_pool": 2000, "heldout": 200, "benign": 100}),
}


def build(family: str, sizes: dict[str, int], seed: int = 0) -> Task:
    params, _ = FAMILIES[family]
    return TASKS.get(family.removesuffix("-drawn"))(seed, sizes, **params)


@cache
def base(family: str) -> Task:
    return build(family, FAMILIES[family][1])


def _prompts(task: Task) -> dict[str, list[str]]:
    return {s: [i.prompt for i in task.split(s)] for s in SPLITS}


def _assert_nothing_moved(a: Task, b: Task) -> None:
    """Each split of one is a prefix of the same split of the other, and no item (prompt) or
    content (key) of a split is in another split of the other."""
    pa, pb = _prompts(a), _prompts(b)
    for s in SPLITS:
        short, long = sorted((pa[s], pb[s]), key=len)
        assert long[: len(short)] == short, s
    for task, other in ((a, b), (b, a)):
        for s in SPLITS:
            keys = {i.key for i in task.split(s)}
            for t in SPLITS:
                if t != s:
                    assert not keys & {i.key for i in other.split(t)}, (s, t)


@pytest.mark.parametrize("family", list(FAMILIES))
@settings(max_examples=8, deadline=None)
@given(split=st.sampled_from(SPLITS), factor=st.floats(0.0, 1.6))
def test_changing_one_size_moves_no_item_between_splits(family: str, split: str,
                                                        factor: float) -> None:
    sizes = dict(FAMILIES[family][1])
    sizes[split] = int(sizes[split] * factor)
    try:
        other = build(family, sizes)
    except ValueError as exc:  # the two ends would meet: said in one line
        assert "\n" not in str(exc) and "lower" in str(exc)
        return
    _assert_nothing_moved(base(family), other)


def test_heldout_300_to_400_moves_nothing_and_adds_100() -> None:
    """The audit's case: arithmetic of ci.yaml with 100 more held-out problems."""
    sizes = {"attack_pool": 5000, "heldout": 300, "benign": 200}
    a = TASKS.get("arithmetic")(0, sizes, digits=2, ops=["+"])
    b = TASKS.get("arithmetic")(0, {**sizes, "heldout": 400}, digits=2, ops=["+"])
    assert b.split("heldout")[:300] == a.split("heldout")
    assert b.split("benign") == a.split("benign")
    assert b.split("attack_pool") == a.split("attack_pool")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_assign_property(data: st.DataObject) -> None:
    """On any space (contents with one to three variants) and any sizes: variants of a
    content share a split; held-out and benign take one variant, the pool every variant it
    reaches; and growing one size only appends to that split."""
    n = data.draw(st.integers(1, 60), label="contents")
    contents = {f"c{i}": [f"c{i}v{j}" for j in range(data.draw(st.integers(1, 3)))]
                for i in range(n)}
    sizes = {s: data.draw(st.integers(0, 40), label=s) for s in SPLITS}
    grown = data.draw(st.sampled_from(SPLITS), label="grown")
    more = {**sizes, grown: sizes[grown] + data.draw(st.integers(1, 20), label="more")}
    seed = data.draw(st.integers(0, 3), label="seed")
    try:
        small = assign("t", seed, contents, sizes, "t")
    except ValueError:
        return
    for s in ("heldout", "benign"):
        assert len({k for k, _ in small[s]}) == len(small[s]) == sizes[s]
    assert len(small["attack_pool"]) == sizes["attack_pool"]
    where = {k: s for s in SPLITS for k, _ in small[s]}
    for s in SPLITS:
        assert all(where[k] == s for k, _ in small[s])
    try:
        large = assign("t", seed, contents, more, "t")
    except ValueError:
        return
    for s in SPLITS:
        assert large[s][: len(small[s])] == small[s]
        assert all(where.get(k, s) == s for k, _ in large[s])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_splits_are_disjoint_by_content(family: str) -> None:
    task = base(family)
    keys = {s: {i.key for i in task.split(s)} for s in SPLITS}
    for a, b in (("heldout", "attack_pool"), ("heldout", "benign"), ("benign", "attack_pool")):
        assert not keys[a] & keys[b], (a, b)
    # the content keys a pool prompt asks about are pool contents, never held-out ones
    asked = {k for i in task.split("attack_pool") for k in task.content_keys(i.prompt)}
    assert asked == keys["attack_pool"]


@pytest.mark.parametrize("family", ["arithmetic", "classification", "knowledge", "cipher"])
def test_benign_of_any_size_never_holds_heldout_content(family: str) -> None:
    """A defense's reference set (the benign split of the same task and seed, at its own
    size, like misinformation's reference_task) never contains held-out content."""
    heldout = {i.key for i in base(family).split("heldout")}
    for n in (50, 200, 300):
        benign = {i.key for i in build(family, {"benign": n}).split("benign")}
        assert not benign & heldout


def test_drawn_spaces_split_by_a_fixed_boundary() -> None:
    task = base("cipher")
    for item in task.split("attack_pool"):
        assert position("cipher", 0, item.key) >= RESERVED
    for item in [*task.split("heldout"), *task.split("benign")]:
        assert position("cipher", 0, item.key) < RESERVED


def test_seeds_give_different_splits_of_the_same_space() -> None:
    a, b = build("arithmetic", FAMILIES["arithmetic"][1], 0), build(
        "arithmetic", FAMILIES["arithmetic"][1], 1)
    ka, kb = ({i.key for i in t.split("heldout")} for t in (a, b))
    assert len(ka & kb) < 0.2 * len(ka)


# -- the shipped sizes fit -----------------------------------------------------------------


def _scenario_tasks() -> list[tuple[str, str, dict[str, Any], int]]:
    out = []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for name, spec in (doc.get("tasks") or {}).items():
            for seed in doc.get("seeds") or [0]:
                out.append((f"{path.name}:{name}", spec["family"], spec, seed))
    return out


@pytest.mark.parametrize(("where", "family", "spec", "seed"), _scenario_tasks(),
                         ids=[t[0] + f"@{t[3]}" for t in _scenario_tasks()])
def test_shipped_scenario_tasks_build(where: str, family: str, spec: dict[str, Any],
                                      seed: int) -> None:
    sizes = {s: int(spec.get(s, 0)) for s in SPLITS}
    task = TASKS.get(family)(seed, sizes, **(spec.get("params") or {}))
    assert {s: len(task.split(s)) for s in SPLITS} == sizes


def test_teacher_evaluations_build() -> None:
    """The reference teachers' held-out evaluations (and their seed-99 checks) fit."""
    from extractbench.reference.teachers import SPECS

    for spec in SPECS.values():
        for e in spec.evals:
            assert len(e.task().split("heldout")) == e.heldout
            assert len(TASKS.get(e.family)(99, {"heldout": 200}, **e.params).split(
                "heldout")) == 200
