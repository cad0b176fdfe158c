"""``vote``: the majority filter, and the attack against the real reference server (a tiny
random model for the campaign checks, the shipped ``classify-ref`` teacher behind ``perturb``
for what the filter buys)."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractbench.attacks import ATTACKS
from extractbench.attacks.base import train_pairs, train_prompt_map
from extractbench.attacks.vote import LEADS, answer_reader, generic_answer, vote, worded
from extractbench.config.budget import Budget
from extractbench.defenses.perturb import Perturb
from extractbench.reference.lm import TinyLM
from extractbench.reference.teachers import load_reference
from extractbench.tasks import TASKS
from extractbench.tasks.classification import Classification
from extractbench.testing.attacks import BUDGETS, check_blocked, check_campaign, run_attack, task

pytestmark = pytest.mark.usefixtures("one_torch_thread")

READ = TASKS.get("classification")(0, {"benign": 1}).extract


# -- the vote --------------------------------------------------------------------------------


def test_a_strict_majority_is_kept() -> None:
    assert vote(["billing", "shipping", "billing"], READ, 3) == 0
    assert vote(["hsipping", "shipping", "shipping"], READ, 3) == 1


def test_a_tie_or_a_plurality_is_dropped() -> None:
    assert vote(["billing", "shipping"], READ, 2) is None
    assert vote(["billing", "billing", "sales", "sales"], READ, 4) is None
    assert vote(["billing", "sales", "returns"], READ, 3) is None
    assert vote(["billing", "billing", "sales", "returns", "accounts"], READ, 5) is None


def test_unreadable_answers_and_missing_asks_vote_for_nothing() -> None:
    # poisoned labels ("bililng") name no team: one readable answer is no majority of 3
    assert vote(["bililng", "billnig", "billing"], READ, 3) is None
    assert vote(["billing"], READ, 3) is None  # two asks got no answer
    assert vote(["billing", "billing"], READ, 3) == 0  # 2 of 3 is a strict majority
    assert vote([], READ, 3) is None


def test_the_winner_is_the_most_common_text_naming_the_majority_answer() -> None:
    answers = ["Team: billing", "billing", "sales", "billing"]
    assert vote(answers, READ, 4) == 1
    assert vote(["Team: billing", "billing."], READ, 2) == 0  # a tie of texts: the earliest


def test_the_answer_readers() -> None:
    assert answer_reader("classification")("Team: tech.") == "technical"
    assert answer_reader("arithmetic")("<reasoning>1+1=2</reasoning> 42") == "42"
    assert answer_reader("no-such-family") is generic_answer
    assert generic_answer("<reasoning>x</reasoning> **Paris**.") == "paris"
    assert generic_answer("<reasoning>cut off") is None


def test_wordings_keep_the_content() -> None:
    t = Classification(0, {"attack_pool": 200, "heldout": 20, "benign": 20})
    for item in t.split("attack_pool")[:50]:
        assert {t.content_key(worded(item.prompt, lead)) for lead in LEADS} == {item.key}
    arith = task()
    for item in arith.split("attack_pool")[:50]:
        assert {arith.content_key(worded(item.prompt, lead)) for lead in LEADS} == {item.key}


@pytest.mark.parametrize(("params", "line"), [
    ({"asks": 1}, "p.asks: must be an integer in [2, 16], got 1"),
    ({"vary": "shuffle"}, "p.vary: "),
    ({"vary": "sample"}, "p.temperature: vary: sample re-asks the same prompt"),
    ({"vary": "sample", "temperature": 0.005}, "p.temperature: must be 0 (greedy) or at least"),
    ({"asks": 9}, "p.asks: vary: wording has 8 wordings, so at most 8 asks; got 9"),
])
def test_parameters_are_checked(params: dict[str, object], line: str) -> None:
    lines = ATTACKS.validate_params("vote", params, "p")
    assert len(lines) == 1 and lines[0].startswith(line), lines
    with pytest.raises(ValueError, match="vote: "):
        ATTACKS.get("vote")(**params)


def test_valid_parameters() -> None:
    assert ATTACKS.validate_params("vote", {"vary": "sample", "temperature": 0.7}) == []
    assert ATTACKS.validate_params("vote", {"asks": 8}) == []


# -- the campaign ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(BUDGETS))
def test_within_budget_and_no_heldout(tiny_lm: TinyLM, tmp_path: Path, kind: str) -> None:
    out = run_attack(tiny_lm, tmp_path, "vote", BUDGETS[kind])
    check_campaign(out, min_share=0.6)
    assert out.stop.startswith("budget exhausted")


def test_asks_each_prompt_k_ways_and_trains_only_on_winners(tiny_lm: TinyLM,
                                                            tmp_path: Path) -> None:
    out = run_attack(tiny_lm, tmp_path, "vote", Budget(queries=40), {"asks": 3})
    sent = [e.request.prompt for e in out.responses()]
    assert len(sent) == 39  # 13 full votes; the 40th query would start a vote it cannot end
    assert "less than one vote of 3 asks left" in out.stop
    pool = {i.prompt for i in task().split("attack_pool")}
    assert sum(p in pool for p in sent) == 13
    assert len(set(sent)) == 39  # every ask a different wording
    notes = train_prompt_map(out.entries)
    assert set(notes) == {e.index for e in out.responses()}  # every answer decided
    pairs = train_pairs(out.entries)
    assert len(pairs) == sum(p is not None for p in notes.values()) <= 13
    assert all(p.prompt in pool for p in pairs)


def test_sample_mode_re_asks_the_same_prompt(tiny_lm: TinyLM, tmp_path: Path) -> None:
    out = run_attack(tiny_lm, tmp_path, "vote", Budget(queries=12),
                     {"vary": "sample", "temperature": 1.0, "asks": 4})
    sent = [e.request.prompt for e in out.responses()]
    assert len(sent) == 12 and len(set(sent)) == 3
    assert all(e.request.params.temperature == 1.0 for e in out.responses())


@pytest.mark.parametrize("status", [403, 429])
def test_survives_a_blocking_defense(tiny_lm: TinyLM, tmp_path: Path, status: int) -> None:
    out = run_attack(tiny_lm, tmp_path, "vote", Budget(queries=1000), {"batch": 4},
                     block=status)
    check_blocked(out)
    assert len(out.responses()) == 5
    assert set(train_prompt_map(out.entries)) == {e.index for e in out.responses()}


# -- what the filter buys: the real teacher behind perturb ---------------------------------


def wrong_labels(the_task: Classification, pairs: list[object]) -> tuple[float, int]:
    """Share of training pairs whose label is not the pool prompt's true team, and the count."""
    truth = {i.prompt: i.answer for i in the_task.split("attack_pool")}
    labels = [(truth[p.prompt], the_task.extract(p.response))  # type: ignore[attr-defined]
              for p in pairs]
    return sum(t != got for t, got in labels) / len(labels), len(labels)


def test_vote_filters_out_perturbs_poisoned_labels(tmp_path: Path) -> None:
    teacher = load_reference("classify-ref").eval()
    t = Classification(0, {"attack_pool": 600, "heldout": 60, "benign": 20})
    budget = Budget(queries=240)
    rates = {}
    for name in ("random-pool", "vote"):
        out = run_attack(teacher, tmp_path, name, budget, the_task=t,  # type: ignore[arg-type]
                         extra=[Perturb(poison_fraction=0.3)])
        assert out.spent.queries >= 237
        rates[name] = wrong_labels(t, train_pairs(out.entries))
    (passive, n_passive), (voted, n_voted) = rates["random-pool"], rates["vote"]
    assert n_passive == 240 and 40 <= n_voted <= 80  # fewer labels: about 80 x 0.78
    assert passive >= 0.2, rates  # about 0.3 of the answers are poisoned
    assert voted <= 0.03, rates  # the vote drops them
