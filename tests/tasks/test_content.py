"""Content keys: every wording of an item, and every prompt the shipped attacks make of it, maps
to the item's content key; commuted twins are one content; held-out hygiene by content
(:class:`~extractbench.tasks.splits.HeldOutContent`); and what knowledge holds out."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extractbench.attacks.base import DEFAULT_REASONING_SUFFIX
from extractbench.attacks.cot_coercion import coerce
from extractbench.attacks.stealth import GENERIC_FILLER, paraphrase
from extractbench.attacks.synthetic import Generator, instruct_prompt
from extractbench.tasks import (
    SPLITS,
    TASKS,
    HeldOutContent,
    Task,
    TaskItem,
    cipher,
    classification,
    knowledge,
)
from extractbench.tasks import arithmetic as arith
from extractbench.tasks.splits import keys_of

# the shipped scenarios' task sizes (scenarios/ci.yaml)
SHIPPED: dict[str, tuple[dict[str, object], dict[str, int]]] = {
    "arithmetic": ({"digits": 2, "ops": ["+"]},
                   {"attack_pool": 5000, "heldout": 300, "benign": 200}),
    "cipher": ({"min_len": 4, "max_len": 6}, {"attack_pool": 5000, "heldout": 300, "benign": 200}),
    "knowledge": ({"entities": 60}, {"attack_pool": 600, "heldout": 200, "benign": 100}),
    "classification": ({"products": 120},
                       {"attack_pool": 5000, "heldout": 300, "benign": 200}),
}


@cache
def shipped(family: str, seed: int = 0) -> Task:
    params, sizes = SHIPPED[family]
    return TASKS.get(family)(seed, sizes, **params)


def items(task: Task) -> list[TaskItem]:
    return [i for s in SPLITS for i in task.split(s)]


# -- arithmetic ----------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [
    ("What is 47 + 38? Answer with the number only.",
     "Compute 38 + 47. Answer with the number only."),
    ("What is 3 * 12 + 5?", "Calculate 5 + 12 * 3 and answer with the number only."),
    ("What is 12 * 3 * 7?", "What is 7 * 3 * 12?"),
    ("What is 50 - 7 + 2 + 9?", "What is 50 - 7 + 9 + 2?"),
    ("What is 40 + 2 - 7?", "What is 2 + 40 - 7?"),
    ("What is 47 plus 38?", "What is 38 + 47? Show your working."),
    ("What is 12 × 3?", "What is 3 x 12?"),
])
def test_commuted_twins_share_a_key(a: str, b: str) -> None:
    task = shipped("arithmetic")
    assert task.content_key(a) is not None
    assert task.content_key(a) == task.content_key(b)


@pytest.mark.parametrize(("a", "b"), [
    ("What is 50 - 7 + 2?", "What is 50 + 2 - 7?"),  # nothing moves across a '-'
    ("What is 47 - 38?", "What is 38 - 47?"),
    ("What is 3 * 12 + 5?", "What is 3 + 12 * 5?"),
    ("What is 47 + 38?", "What is 47 + 39?"),
])
def test_different_problems_have_different_keys(a: str, b: str) -> None:
    task = shipped("arithmetic")
    assert task.content_key(a) != task.content_key(b)


_problem = st.integers(2, 4).flatmap(lambda n: st.tuples(
    st.tuples(*[st.integers(0, 99)] * n), st.tuples(*[st.sampled_from("+-*")] * (n - 1))))


@settings(max_examples=300, deadline=None)
@given(_problem, st.randoms(use_true_random=False))
def test_canonical_form_is_sound(problem: arith.Problem, rng: random.Random) -> None:
    """The key is a problem with the same answer, valid exactly when the problem is, and a
    fixed point; reordering the factors of a product never changes it."""
    nums, ops = problem
    key = arith.canonical(nums, ops)
    cnums, cops = arith.parse(key)
    assert eval(key) == eval(arith.expression(nums, ops))
    assert arith.canonical(cnums, cops) == key
    assert arith._valid(cnums, cops) == arith._valid(nums, ops)
    # shuffle the operands inside each product: same key
    groups: list[list[int]] = [[nums[0]]]
    for op, n in zip(ops, nums[1:], strict=True):
        if op == "*":
            groups[-1].append(n)
        else:
            groups.append([n])
    for g in groups:
        rng.shuffle(g)
    shuffled = tuple(n for g in groups for n in g)
    assert arith.canonical(shuffled, ops) == key


@pytest.mark.parametrize("params", [
    {"digits": 2, "ops": ["+"]},
    {"digits": 2, "ops": ["+", "-", "*"], "terms": 3},
    {"digits": 1, "ops": ["+", "*"], "terms": 4},
])
def test_every_template_and_the_reasoning_suffix_map_to_the_key(
        params: dict[str, object]) -> None:
    task = TASKS.get("arithmetic")(1, {"attack_pool": 300, "heldout": 100, "benign": 50},
                                   **params)
    for item in items(task):
        (expr,) = re.findall(r"\d[\d +*-]*\d", item.prompt)
        for template in arith.TEMPLATES:
            prompt = template.format(expr=expr)
            assert task.content_keys(prompt) == (item.key,)
            assert task.content_keys(prompt + arith.REASONING_SUFFIX) == (item.key,)


# -- the other families --------------------------------------------------------------------


def test_cipher_every_template_and_quoting_map_to_the_word() -> None:
    task = shipped("cipher")
    for item in task.split("heldout"):
        for template in cipher.TEMPLATES:
            assert task.content_keys(template.format(w=item.key)) == (item.key,)
        assert task.content_key(f'Encode the word "{item.key.upper()}" please.') == item.key
        assert task.content_key(f"What's ‘{item.key}’ in the house cipher?") == item.key
    assert task.content_keys("What's a fun fact about octopuses?") == ()


def test_classification_every_opener_and_instruction_map_to_the_ticket() -> None:
    task = shipped("classification")
    for item in task.split("heldout")[:100]:
        product = next(p for p in classification.PRODUCTS if p in item.key)
        complaint = next(c for c in classification.COMPLAINTS
                         if c.format(p=product) == item.key)
        for opener in classification.OPENERS:
            text = classification.ticket(opener, complaint, product)
            for prompt in classification.PROMPTS:
                assert task.content_keys(prompt.format(t=text)) == (item.key,)
        assert task.content_key(f"TICKET: {item.key.upper()} THANKS!") == item.key
    assert task.content_keys("Is the Notaproduct on sale?") == ()


def test_knowledge_every_question_maps_to_its_phrasing() -> None:
    task = knowledge.Knowledge(0, {"heldout": 1}, entities=knowledge.MAX_ENTITIES)
    for entity in knowledge.ENTITIES:
        for attribute, templates in knowledge.TEMPLATES.items():
            for i, template in enumerate(templates):
                key = knowledge.fact_key(entity, attribute, i)
                prompt = template.format(e=entity)
                assert task.content_keys(prompt) == (key,)
                assert task.content_keys(prompt.lower()) == (key,)
                assert task.content_keys(f"Hi! {prompt} Thanks!") == (key,)
    assert task.content_keys("Where does Nobody Atall live?") == ()


def test_jsonl_key_field_groups_paraphrases_else_the_normalised_prompt(tmp_path: Path) -> None:
    rows = [
        '{"prompt": "What is the capital of France? Answer with one word.", "answer": "Paris",'
        ' "key": "capital-fr"}',
        '{"prompt": "Which city is the capital of France?", "answer": "Paris",'
        ' "key": "capital-fr"}',
        '{"prompt": "What is 12 squared?", "answer": 144}',
        '{"prompt": "  what is 12 SQUARED ?? ", "answer": 144}',
        *[f'{{"prompt": "What is {i} cubed?", "answer": {i ** 3}}}' for i in range(30)],
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(rows) + "\n")
    task = TASKS.get("jsonl")(0, {"heldout": 6, "benign": 3, "attack_pool": 100},
                              path=str(path))
    by_prompt = {i.prompt: i.key for i in items(task)}
    where = {i.key: s for s in SPLITS for i in task.split(s)}
    assert where["capital-fr"] and where["what is 12 squared"]
    assert task.content_key("Quick question: which city is the capital of France? Thanks!") \
        == "capital-fr"
    assert task.content_key("What's 12 squared? Reply with just the number.") \
        == "what is 12 squared"
    assert task.content_key("What is 13 squared?") is None
    # the two variants of a content share a split: both in the pool, or one held-out/benign
    for key in ("capital-fr", "what is 12 squared"):
        splits = {s for s in SPLITS for i in task.split(s) if i.key == key}
        assert len(splits) == 1
    assert all(task.content_key(p) == k for p, k in by_prompt.items())
    rows.append('{"prompt": "which city is the CAPITAL of France", "answer": "Paris", '
                '"key": "other"}')
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"t.jsonl:35: the prompt reads the same as line 2's"):
        TASKS.get("jsonl")(0, {"heldout": 1}, path=str(path))


# -- what the shipped attacks send ---------------------------------------------------------


def _cot(task: Task) -> Callable[[str, random.Random], str]:
    suffix = task.reasoning_suffix or DEFAULT_REASONING_SUFFIX
    return lambda p, rng: coerce(p, suffix, suffix == DEFAULT_REASONING_SUFFIX)


REWORDINGS: dict[str, Callable[[Task], Callable[[str, random.Random], str]]] = {
    # random-pool, logprob-harvest and active send pool prompts as they are
    "verbatim": lambda task: lambda p, rng: p,
    "cot-coercion": _cot,
    "stealth": lambda task: paraphrase,
}


@pytest.mark.parametrize("family", list(SHIPPED))
@pytest.mark.parametrize("attack", list(REWORDINGS))
def test_each_attack_rewording_of_a_pool_prompt_maps_to_its_key(family: str,
                                                                attack: str) -> None:
    task = shipped(family)
    reword = REWORDINGS[attack](task)
    rng = random.Random(0)
    pool = task.split("attack_pool")
    same = sum(task.content_keys(reword(i.prompt, rng)) == (i.key,) for i in pool)
    assert same / len(pool) == 1.0


@pytest.mark.parametrize("family", list(SHIPPED))
def test_stealth_filler_asks_about_no_content(family: str) -> None:
    task = shipped(family)
    assert all(task.content_keys(p) == () for p in GENERIC_FILLER)


# share of synthetic (template) prompts that ask about some content, measured: 1.0 where the
# prompt keeps its slots whole; below it where word-level crossover cuts questions apart
SYNTHETIC_MAPPED = {"arithmetic": 1.0, "classification": 0.9, "cipher": 0.75, "knowledge": 0.6}


def _asks_a_whole_question(family: str, prompt: str) -> bool:
    """Whether ``prompt`` contains one of the family's questions verbatim (independent of the
    content-key code)."""
    low = prompt.casefold()
    if family == "cipher":
        return re.search(r"'[a-z]+'", low) is not None
    if family == "classification":
        return any(c.format(p=p).casefold().rstrip(".?") in low
                   for p in classification.PRODUCTS for c in classification.COMPLAINTS)
    if family == "knowledge":
        return any(t.split("?")[0].split(".")[0].format(e=e).casefold() in low
                   for e in knowledge.ENTITIES for ts in knowledge.TEMPLATES.values()
                   for t in ts)
    return re.search(r"\d+ [+*-] \d+", prompt) is not None


@pytest.mark.parametrize("family", list(SHIPPED))
def test_synthetic_prompts_map_to_keys(family: str) -> None:
    """``synthetic`` builds prompts from the public examples (templates, recombination,
    crossover): every prompt that still holds a whole question maps to a key."""
    task = shipped(family)
    examples = [i.prompt for i in task.split("benign")[:8]]
    gen = Generator(examples, random.Random(1), 0.25)
    made = [gen.make() for _ in range(400)]
    mapped = [p for p in made if task.content_keys(p)]
    assert len(mapped) / len(made) >= SYNTHETIC_MAPPED[family]
    assert not [p for p in made if p not in mapped and _asks_a_whole_question(family, p)]
    # a self-instruct request quotes examples; it names their (benign) contents only
    ask = instruct_prompt(examples, random.Random(2))
    assert HeldOutContent(task).forbids(ask) is None
    assert set(task.content_keys(ask)) <= {i.key for i in task.split("benign")}


def test_synthetic_hits_heldout_arithmetic_by_chance_and_is_caught() -> None:
    """The synthetic attacker draws random 2-digit sums: at 1,000 queries it asks about a
    few dozen held-out problems (in other wordings and orders than the held-out item), and
    every one of those prompts is forbidden."""
    task = shipped("arithmetic")
    held = HeldOutContent(task)
    gen = Generator([i.prompt for i in task.split("benign")[:8]], random.Random(1), 0.25)
    made = [gen.make() for _ in range(1000)]
    heldout_prompts = {i.prompt for i in task.split("heldout")}
    hits = [p for p in made if held.forbids(p) is not None]
    assert 20 <= held.overlap(made) <= 120
    assert len([p for p in hits if p not in heldout_prompts]) > len(hits) / 2  # not by hash


# -- hygiene by content --------------------------------------------------------------------


@pytest.mark.parametrize("family", list(SHIPPED))
def test_heldout_content_forbids_every_wording_and_nothing_of_the_pool(family: str) -> None:
    task = shipped(family)
    held = HeldOutContent(task)
    rng = random.Random(3)
    cot = _cot(task)
    for item in task.split("heldout"):
        assert held.forbids(item.prompt) == item.key
        assert held.forbids(paraphrase(item.prompt, rng)) == item.key
        assert held.forbids(cot(item.prompt, rng)) == item.key
    pool = [i.prompt for i in task.split("attack_pool")]
    benign = [i.prompt for i in task.split("benign")]
    assert held.overlap(pool) == held.overlap(benign) == 0
    assert held.overlap([paraphrase(p, rng) for p in pool]) == 0
    assert held.overlap([i.prompt for i in task.split("heldout")]) == len(held.keys)


def test_the_commuted_twin_of_every_heldout_problem_is_forbidden_and_not_pooled() -> None:
    task = shipped("arithmetic")
    held = HeldOutContent(task)
    pool = {i.prompt for i in task.split("attack_pool")}
    for item in task.split("heldout"):
        a, b = map(int, re.findall(r"\d+", item.prompt))
        for template in arith.TEMPLATES:
            twin = template.format(expr=f"{b} + {a}")
            assert held.forbids(twin) == item.key
            assert twin not in pool
    assert len(task.split("heldout")) == 300


def test_several_questions_in_one_prompt_are_all_checked() -> None:
    task = shipped("arithmetic")
    held = HeldOutContent(task)
    pool, heldout = task.split("attack_pool")[0], task.split("heldout")[0]
    prompt = f"{pool.prompt} Also: {heldout.prompt}"
    assert task.content_keys(prompt) == (pool.key, heldout.key)
    assert held.forbids(prompt) == heldout.key


class _ThirdParty:
    """A user's task that knows nothing of content keys."""

    name = "third-party"
    max_answer_tokens = reasoning_max_tokens = 8
    reference_model = ""
    reasoning_suffix: str | None = None

    def split(self, name: str) -> list[TaskItem]:
        if name == "heldout":
            return [TaskItem("a", "What is the tallest tree? Answer with one word.", "redwood")]
        return [TaskItem("b", "What is the oldest tree?", "bristlecone")]

    def extract(self, text: str) -> str | None:
        return text

    def score(self, prediction: str | None, item: TaskItem) -> float:
        return float(prediction == item.answer)


def test_a_task_without_content_keys_is_checked_by_normalised_wording() -> None:
    task = _ThirdParty()
    held = HeldOutContent(task)  # type: ignore[arg-type]
    assert held.forbids("what is the TALLEST tree?") == "a"
    assert held.forbids("Quick question: what's the tallest tree? Reply with one word.") == "a"
    assert held.forbids("What is the oldest tree?") is None
    assert keys_of(task)("What is the oldest tree? Thanks!") == ("b",)  # type: ignore[arg-type]


# -- knowledge: what is held out, and the proof that it is the right thing -----------------


_ATTRIBUTE_WORDS = {"town": ("live", "town"), "job": ("job", "living", "profession", "works"),
                    "colour": ("colour",), "pet": ("pet", "animal")}


def _fact_of(prompt: str) -> tuple[str, str]:
    """(person, attribute) a question is about, read from its words alone (no content-key
    code)."""
    entity = max((e for e in knowledge.ENTITIES if e in prompt), key=len)
    rest = prompt.replace(entity, " ").lower()
    (attribute,) = [a for a, words in _ATTRIBUTE_WORDS.items()
                    if any(re.search(rf"\b{w}", rest) for w in words)]
    return entity, attribute


@pytest.mark.parametrize(("entities", "sizes"), [
    (60, SHIPPED["knowledge"][1]),                              # ci.yaml
    (200, {"attack_pool": 2900, "heldout": 200, "benign": 100}),  # students.yaml
])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knowledge_holds_out_phrasings_so_heldout_measures_facts(
        entities: int, sizes: dict[str, int], seed: int) -> None:
    """What knowledge holds out is one *phrasing* of a fact. The proof that this makes
    transfer meaningful, on the shipped sizes:

    1. no held-out question is ever sendable: no pool question, in any wording the shipped
       attacks make of it, asks a held-out question;
    2. every held-out fact is in the pool in other phrasings;
    3. so a student that learns *facts* from the pool's answers gets every held-out question
       right, and a student that memorises the pool's *questions* gets none: the held-out score
       separates knowing the fact from having seen the string (held-out facts would leave
       nothing to learn: every student would score chance).
    """
    task = knowledge.Knowledge(seed, sizes, entities=entities)
    held = HeldOutContent(task)
    pool, heldout = task.split("attack_pool"), task.split("heldout")
    rng = random.Random(seed)
    cot = _cot(task)
    sent = [w for i in pool for w in (i.prompt, paraphrase(i.prompt, rng), cot(i.prompt, rng))]
    assert held.overlap(sent) == 0  # 1.
    assert all(_fact_of(p) == _fact_of(i.prompt) for i in pool for p in (i.prompt,))
    learned: dict[tuple[str, str], set[str]] = {}
    for item in pool:  # the teacher's answers, as an attacker harvests them
        learned.setdefault(_fact_of(item.prompt), set()).add(item.prompt)
    for item in heldout:  # 2.
        phrasings = learned.get(_fact_of(item.prompt), set())
        assert phrasings and item.prompt not in phrasings
    facts = {_fact_of(i.prompt): i.answer for i in pool}
    memorised = {i.prompt: i.answer for i in pool}
    by_fact = sum(facts.get(_fact_of(i.prompt)) == i.answer for i in heldout) / len(heldout)
    by_string = sum(memorised.get(i.prompt) == i.answer for i in heldout) / len(heldout)
    assert (by_fact, by_string) == (1.0, 0.0)  # 3.


def test_the_attribute_reader_of_the_proof_reads_every_phrasing() -> None:
    for entity in knowledge.ENTITIES[:20]:
        for attribute, templates in knowledge.TEMPLATES.items():
            for t in templates:
                assert _fact_of(t.format(e=entity)) == (entity, attribute)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 200), st.integers(0, 3), st.data())
def test_a_pool_as_large_as_the_facts_covers_every_heldout_fact(entities: int, seed: int,
                                                               data: st.DataObject) -> None:
    facts = 4 * entities
    pool = data.draw(st.integers(facts, 3 * facts), label="attack_pool")
    heldout = data.draw(st.integers(1, max(1, (16 * entities - pool) // 2)), label="heldout")
    try:
        task = knowledge.Knowledge(seed, {"attack_pool": pool, "heldout": heldout}, entities)
    except ValueError:
        return  # the two ends would meet: a one-line error, tested elsewhere
    pooled = {i.key.rsplit("|", 1)[0] for i in task.split("attack_pool")}
    assert {i.key.rsplit("|", 1)[0] for i in task.split("heldout")} <= pooled
