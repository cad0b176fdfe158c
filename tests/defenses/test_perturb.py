"""``perturb`` through the real OpenAI SDK (raised temperature, poisoned answers for all or
only flagged keys) and the poisoning rules."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import openai
import pytest

from extractbench.defenses import AuditEvent, Defense, DefenseStack, RequestContext
from extractbench.defenses.perturb import Perturb
from extractbench.defenses.poison import poison_text
from extractbench.defenses.scripted import Scripted
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.types import Generation, SamplingParams

KEYS = {"fake-pt-a-61c0ffee": "attacker-0", "fake-pt-b-0ddba11e": "benign-0"}
ATTACKER, BENIGN = list(KEYS)
ANSWER = "The answer is 85"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread


@contextmanager
def server(model: TinyLM, stages: list[Defense]) -> Iterator[tuple[RunningServer, DefenseStack]]:
    stack = DefenseStack(stages)
    with RunningServer(create_app({"tiny": ServedModel("tiny", model)}, KEYS, stack)) as srv:
        yield srv, stack


def ask(srv: RunningServer, key: str, prompt: str = "What is 47 + 38?", **kw: object) -> str:
    with openai.OpenAI(base_url=srv.openai_base_url, api_key=key, max_retries=0) as c:
        r = c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": prompt}],
                                      max_tokens=24, temperature=0.0, **kw)  # type: ignore[call-overload]
    choice = r.choices[0]
    if choice.logprobs is not None:
        assert "".join(t.token for t in choice.logprobs.content) == choice.message.content
    return str(choice.message.content)


def test_raised_temperature_turns_greedy_answers_into_samples(tiny_lm: TinyLM) -> None:
    with server(tiny_lm, []) as (srv, _):
        greedy = {ask(srv, ATTACKER) for _ in range(5)}
    with server(tiny_lm, [Perturb(temperature=1.5)]) as (srv, _):
        sampled = {ask(srv, ATTACKER) for _ in range(5)}
    assert len(greedy) == 1
    assert len(sampled) >= 3


def test_poison_all_changes_one_digit_consistently_with_logprobs(tiny_lm: TinyLM) -> None:
    with server(tiny_lm, [Scripted(lambda _: ANSWER), Perturb(poison_fraction=1.0)]) as (
            srv, stack):
        first = ask(srv, BENIGN, logprobs=True, top_logprobs=3)
        again = ask(srv, ATTACKER)
    assert first != ANSWER and first == again  # same question, same wrong answer
    assert first.startswith("The answer is ") and len(first) == len(ANSWER)
    assert sum(a != b for a, b in zip(first, ANSWER, strict=True)) == 1
    assert len(stack.audit.events(kind="degrade")) == 2


def test_scope_flagged_poisons_only_flagged_keys(tiny_lm: TinyLM) -> None:
    stages: list[Defense] = [Scripted(lambda _: ANSWER),
                             Perturb(poison_fraction=1.0, scope="flagged")]
    with server(tiny_lm, stages) as (srv, stack):
        assert ask(srv, ATTACKER) == ANSWER  # not flagged yet
        stack.audit.record(AuditEvent("attacker-0", 0.0, 1, "detector", "flag"))
        assert ask(srv, ATTACKER) != ANSWER
        assert ask(srv, BENIGN) == ANSWER


def test_poison_fraction_is_the_share_of_prompts_poisoned() -> None:
    p = Perturb(poison_fraction=0.3, seed=1)
    hit = 0
    for i in range(400):
        ctx = RequestContext("openai", "/", "k", i, "m", f"What is {i} + 1?", SamplingParams())
        gen = Generation(str(i + 1), "stop", 5, 3)
        hit += p.transform(ctx, [gen])[0].text != gen.text
    assert 0.24 <= hit / 400 <= 0.36


def test_poison_rules() -> None:
    rng = random.Random(0)
    for _ in range(50):
        out = poison_text("Total: 70", rng)
        assert out != "Total: 70" and len(out) == 9 and not out[7:].startswith("0")
    worked = "<reasoning>3 + 4 = 7</reasoning>\n7"
    out = poison_text(worked, rng)
    assert out.startswith("<reasoning>3 + 4 = 7</reasoning>\n") and out[-1] != "7"
    word = poison_text("Paris", rng)
    assert sorted(word) == sorted("Paris") and word != "Paris"
    assert poison_text("!!", rng) == "!!"


def test_stated_bound_and_bad_params() -> None:
    assert Perturb(poison_fraction=0.2).benign_bound == 0.2
    assert Perturb(temperature=1.0).benign_bound is None
    with pytest.raises(ValueError, match="nothing to do"):
        Perturb()
    with pytest.raises(ValueError, match="temperature must be a number in \\(0, 2\\]"):
        Perturb(temperature=3)
    with pytest.raises(ValueError, match="scope must be one of 'all', 'flagged'"):
        Perturb(poison_fraction=0.1, scope="some")
