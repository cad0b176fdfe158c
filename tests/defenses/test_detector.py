"""``detector``: the three tests on query streams, and each action through the SDK clients
(a blocked key gets 403 in the API's error shape, a throttled one 429 with retry-after, a key
handed to ``perturb`` gets wrong answers), every flag in the audit log."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anthropic
import openai
import pytest

from extractbench.defenses import Defense, DefenseStack, RequestContext
from extractbench.defenses.detector import Detector
from extractbench.defenses.perturb import Perturb
from extractbench.defenses.scripted import Scripted
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.tasks import TASKS, prompt_hash
from extractbench.types import SamplingParams

KEYS = {"fake-dt-a-9d2c41f0": "attacker-0", "fake-dt-b-77e1a2b3": "benign-0"}
ATTACKER, BENIGN = list(KEYS)
_TEXT = ("the a cat dog sat on mat why how what is are be to of and in that have it for not "
         "with as you do at this but his by from they we say her she or an will my one all "
         "would there their")
WORDS = _TEXT.split(" ")


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread


@contextmanager
def server(model: TinyLM, stages: list[Defense]) -> Iterator[tuple[RunningServer, DefenseStack]]:
    stack = DefenseStack([Scripted(lambda _: "85"), *stages])
    with RunningServer(create_app({"tiny": ServedModel("tiny", model)}, KEYS, stack)) as srv:
        yield srv, stack


def oa(srv: RunningServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.openai_base_url, api_key=key, max_retries=0)


def chat(c: openai.OpenAI, prompt: str) -> str:
    r = c.chat.completions.create(model="tiny", max_tokens=4,
                                  messages=[{"role": "user", "content": prompt}])
    return str(r.choices[0].message.content)


def feed(d: Detector, prompts: list[str], key: str = "k") -> dict[str, float]:
    for i, p in enumerate(prompts):
        d.check_request(RequestContext("openai", "/", key, i, "m", p, SamplingParams()))
    return d.flagged(key)


def natural(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randrange(5, 15))) for _ in range(n)]


def test_block_gives_403_from_the_flagging_query_on_and_audits_it(tiny_lm: TinyLM) -> None:
    det = Detector(tests=["volume"], volume_total=5, action="block")
    t0 = time.time()
    with server(tiny_lm, [det]) as (srv, stack), oa(srv, ATTACKER) as c:
        for i in range(5):
            assert chat(c, f"What is {i} + 1?") == "85"
        with pytest.raises(openai.PermissionDeniedError) as err:
            chat(c, "What is 5 + 1?")
        with pytest.raises(openai.PermissionDeniedError):
            chat(c, "What is 6 + 1?")
        with oa(srv, BENIGN) as other:
            assert chat(other, "What is 5 + 1?") == "85"
        with anthropic.Anthropic(base_url=srv.anthropic_base_url, api_key=ATTACKER,
                                 max_retries=0) as ac, \
                pytest.raises(anthropic.PermissionDeniedError) as aerr:
            ac.messages.create(model="tiny", max_tokens=4,
                               messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 403 and err.value.type == "permission_error"
    assert "suspended" in err.value.message and ATTACKER not in err.value.response.text
    assert aerr.value.response.json()["error"]["type"] == "permission_error"
    [flag] = stack.audit.events(kind="flag")
    assert (flag.key_id, flag.query_index, flag.defense) == ("attacker-0", 5, "detector")
    assert t0 <= flag.time <= time.time()
    assert flag.detail["test"] == "volume" and flag.detail["statistic"] == 6
    assert flag.detail["prompt_hash"] == prompt_hash("What is 5 + 1?")
    assert [e.query_index for e in stack.audit.events("attacker-0", "reject")] == [5, 6, 7]


def test_throttle_serves_one_request_per_interval(tiny_lm: TinyLM) -> None:
    clock = Clock()
    det = Detector(tests=["volume"], volume_total=3, action="throttle", throttle_s=10)
    det.clock = clock
    with server(tiny_lm, [det]) as (srv, stack), oa(srv, ATTACKER) as c:
        for i in range(4):  # the 4th is flagged, and served: the first of its interval
            chat(c, f"q{i}")
        with pytest.raises(openai.RateLimitError) as err:
            chat(c, "q4")
        assert err.value.response.headers["retry-after"] == "10"
        clock.t += 10
        chat(c, "q5")
    assert len(stack.audit.events(kind="flag")) == 1
    assert [e.query_index for e in stack.audit.events(kind="reject")] == [4]


def test_perturb_action_hands_the_key_to_perturb(tiny_lm: TinyLM) -> None:
    det = Detector(tests=["volume"], volume_total=2, action="perturb")
    with server(tiny_lm, [det, Perturb(poison_fraction=1.0, scope="flagged")]) as (srv, _):
        with oa(srv, ATTACKER) as c:
            before = [chat(c, f"What is {i} + 1?") for i in range(2)]
            after = [chat(c, f"What is {i} + 1?") for i in range(2, 6)]
        with oa(srv, BENIGN) as b:
            benign = chat(b, "What is 9 + 1?")
    assert before == ["85", "85"] and benign == "85"
    assert all(a != "85" for a in after)


def test_duplicate_flags_templated_streams_not_diverse_ones() -> None:
    task = TASKS.get("arithmetic")(0, {"attack_pool": 200}, digits=2, ops=["+"])
    templated = [i.prompt for i in task.split("attack_pool")][:60]
    diverse = natural(random.Random(1), 60)
    det = Detector(tests=["duplicate"], action="none", min_queries=50, dup_fraction=0.8)
    assert "duplicate" in feed(det, templated, "a")
    assert feed(det, diverse, "b") == {}
    assert feed(det, templated[:49], "c") == {}  # below min_queries: never tested


def test_prada_flags_augmented_queries_not_natural_ones() -> None:
    rng = random.Random(0)
    nat = natural(rng, 200)
    augmented = []  # seeds, each followed by small perturbations of itself (JBDA-style)
    for s in nat[:40]:
        augmented.append(s)
        for _ in range(4):
            x = list(s)
            x[rng.randrange(len(x))] = rng.choice("abcdefghij")
            augmented.append("".join(x))
    det = Detector(tests=["prada"], action="none", min_queries=100, prada_delta=0.9)
    assert "prada" in feed(det, augmented, "attacker")
    assert det.flagged("attacker")["prada"] < 0.9
    assert feed(det, nat, "user") == {}


def test_volume_window_counts_only_recent_requests() -> None:
    clock = Clock()
    det = Detector(tests=["volume"], action="none", volume_max=5, volume_window_s=60)
    det.clock = clock
    for i in range(10):  # one request every 20 s: at most 4 in any 60 s
        det.check_request(RequestContext("openai", "/", "slow", i, "m", "x", SamplingParams()))
        clock.t += 20
    assert det.flagged("slow") == {}
    for i in range(6):
        det.check_request(RequestContext("openai", "/", "fast", i, "m", "x", SamplingParams()))
    assert det.flagged("fast") == {"volume": 6.0}
    det.reset()
    assert det.flagged("fast") == {}


@pytest.mark.parametrize(("params", "message"), [
    ({"tests": []}, "tests must be a non-empty list"),
    ({"tests": ["volume", "vibes"]}, "tests must be one of 'prada', 'duplicate', 'volume'"),
    ({"action": "ban"}, "action must be one of 'block', 'throttle', 'perturb', 'none'"),
    ({"prada_delta": 1.5}, "prada_delta must be a number in \\(0, 1\\]"),
    ({"min_queries": 2}, "min_queries must be an integer >= 3"),
    ({"volume_total": 0}, "volume_total must be an integer >= 1"),
])
def test_bad_params(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Detector(**params)  # type: ignore[arg-type]


def test_shapiro_w_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    from extractbench.defenses.features import shapiro_w

    rng = random.Random(3)
    for n in (3, 5, 6, 40, 300):
        for draw in (lambda: rng.gauss(0, 1), lambda: rng.expovariate(1.0)):
            x = [draw() for _ in range(n)]
            assert shapiro_w(x) == pytest.approx(stats.shapiro(x).statistic, abs=1e-6)
    assert shapiro_w([2.0] * 10) == 1.0
