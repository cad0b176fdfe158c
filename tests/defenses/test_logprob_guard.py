"""``logprob-guard`` through the real OpenAI SDK: hidden, capped, rounded and noised logprobs,
and ``logit_bias`` ignored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest

from extractbench.defenses import DefenseStack
from extractbench.defenses.logprob_guard import LogprobGuard
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app

KEY = "fake-lg-0-5c1e9a77"
MSG = [{"role": "user", "content": "What is 12 + 30?"}]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread


@contextmanager
def client(model: TinyLM, *guards: LogprobGuard) -> Iterator[openai.OpenAI]:
    app = create_app({"tiny": ServedModel("tiny", model)}, {KEY: "attacker-0"},
                     DefenseStack(list(guards)))
    with RunningServer(app) as srv, openai.OpenAI(
            base_url=srv.openai_base_url, api_key=KEY, max_retries=0) as c:
        yield c


def ask(c: openai.OpenAI, **kw: Any) -> Any:
    args: dict[str, Any] = {"model": "tiny", "messages": MSG, "max_tokens": 8, "seed": 3,
                            "temperature": 1.0, "logprobs": True, "top_logprobs": 5}
    return c.chat.completions.create(**{**args, **kw}).choices[0]


def test_hide_returns_no_logprobs_but_the_same_text(tiny_lm: TinyLM) -> None:
    with client(tiny_lm) as plain:
        open_choice = ask(plain)
    with client(tiny_lm, LogprobGuard(hide=True)) as guarded:
        hidden = ask(guarded)
    assert open_choice.logprobs is not None and open_choice.logprobs.content
    assert hidden.logprobs is None
    assert hidden.message.content == open_choice.message.content


def test_cap_limits_top_logprobs(tiny_lm: TinyLM) -> None:
    with client(tiny_lm, LogprobGuard(max_top_logprobs=2)) as c:
        content = ask(c, top_logprobs=5).logprobs.content
    assert content and all(len(t.top_logprobs) == 2 for t in content)


def test_round_puts_every_logprob_on_the_grid(tiny_lm: TinyLM) -> None:
    with client(tiny_lm, LogprobGuard(round_to=0.5)) as c:
        content = ask(c).logprobs.content
    values = [t.logprob for t in content] + [a.logprob for t in content for a in t.top_logprobs]
    assert values and all(abs(v / 0.5 - round(v / 0.5)) < 1e-9 and v <= 0 for v in values)
    assert len({round(v, 6) for v in values}) < len(values)  # coarsened: values collide


def test_reverse_sigmoid_as_worked_by_hand() -> None:
    import math

    from extractbench.defenses.logprob_guard import reverse_sigmoid
    from extractbench.types import TokenLogprob, TopLogprob

    # p = 0.7, 0.2 returned, 0.1 the rest; beta 1, gamma 0.1: r(p) = sigmoid(0.1 logit p) - 1/2
    # is 0.02117, -0.03460, -0.05471, so p' = 0.67883, 0.23460, 0.15471, which sum to 1.06814:
    # renormalised 0.63553, 0.21964 (and 0.14484 for the rest)
    top = [TopLogprob("a", None, math.log(0.7)), TopLogprob("b", None, math.log(0.2))]
    lp, new = reverse_sigmoid(TokenLogprob("a", None, math.log(0.7), top), top, 1.0, 0.1)
    assert [t.token for t in new] == ["a", "b"]
    assert math.exp(new[0].logprob) == pytest.approx(0.63553, abs=1e-4)
    assert math.exp(new[1].logprob) == pytest.approx(0.21964, abs=1e-4)
    assert lp.logprob == new[0].logprob
    # flattened: the confident token lost mass, the unlikely ones gained it
    assert math.exp(new[0].logprob) < 0.7 and math.exp(new[1].logprob) > 0.2


def test_reverse_sigmoid_keeps_the_text_and_flattens_the_logprobs(tiny_lm: TinyLM) -> None:
    with client(tiny_lm) as plain:
        open_choice = ask(plain, temperature=0.0)
    with client(tiny_lm, LogprobGuard(reverse_sigmoid_beta=0.5, ignore_logit_bias=False)) as c:
        guarded = ask(c, temperature=0.0)
    assert guarded.message.content == open_choice.message.content
    before = [t.logprob for t in open_choice.logprobs.content]
    after = [t.logprob for t in guarded.logprobs.content]
    assert len(before) == len(after) and before != after
    # a chosen token more likely than a half loses mass
    assert all(a < b for a, b in zip(after, before, strict=True) if b > -0.6)


def test_noise_changes_values_consistently_per_prompt(tiny_lm: TinyLM) -> None:
    with client(tiny_lm) as plain:
        clean = ask(plain).logprobs.content
    with client(tiny_lm, LogprobGuard(noise_std=1.0, seed=7)) as c:
        first = ask(c).logprobs.content
        again = ask(c).logprobs.content
    assert [t.token for t in first] == [t.token for t in clean]  # the text is untouched
    diffs = [abs(a.logprob - b.logprob) for a, b in zip(first, clean, strict=True)]
    assert max(diffs) > 0.1
    assert [t.logprob for t in again] == [t.logprob for t in first]  # repeats do not average out
    for t in first:
        tops = [a.logprob for a in t.top_logprobs]
        assert tops == sorted(tops, reverse=True) and max(tops) <= 0.0
        mine = [a.logprob for a in t.top_logprobs if a.token == t.token]
        assert not mine or mine[0] == t.logprob  # one token, one noisy value


def test_logit_bias_is_ignored(tiny_lm: TinyLM) -> None:
    z = ord("Z")
    with client(tiny_lm) as plain:
        forced = ask(plain, logit_bias={str(z): 100}, logprobs=False, top_logprobs=None)
    with client(tiny_lm, LogprobGuard(ignore_logit_bias=True)) as c:
        free = ask(c, logit_bias={str(z): 100}, logprobs=False, top_logprobs=None)
    assert forced.message.content == "Z" * 8
    assert free.message.content != "Z" * 8


@pytest.mark.parametrize(("params", "message"), [
    ({"max_top_logprobs": 21}, "max_top_logprobs must be an integer in \\[0, 20\\]"),
    ({"round_to": 0}, "round_to must be a number in \\(0, 100\\]"),
    ({"noise_std": -1}, "noise_std must be a number in \\[0, 100\\]"),
    ({"ignore_logit_bias": False}, "nothing to do"),
    ({"hide": "yes"}, "hide must be one of True, False"),
])
def test_bad_params(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LogprobGuard(**params)  # type: ignore[arg-type]
