"""Proxy mode: the reference endpoint as upstream, the official SDK clients in front.

Checks that request- and response-stage defenses apply (reasoning stripped, logprobs capped,
logit_bias dropped before going upstream, a flagged key blocked), that the client's key never
goes upstream, and that upstream failures reach the client as clear errors and the operator as
one line, with no key in either.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from extractbench.cli.proxy import add_proxy_command
from extractbench.defenses import Defense, DefenseStack, Rejection, RequestContext
from extractbench.defenses.detector import Detector
from extractbench.defenses.logprob_guard import LogprobGuard
from extractbench.defenses.reasoning_guard import ReasoningGuard
from extractbench.defenses.scripted import Scripted
from extractbench.defenses.watermark import Watermark
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app, create_proxy_app

UPSTREAM_KEY = "up-u9x2q-51d2e8a0c4f7b6"
CLIENT = "client-attacker-9f8e7d6c"
CLIENT2 = "client-benign-1a2b3c4d"
CLIENT_KEYS = {CLIENT: "attacker-0", CLIENT2: "benign-0"}
WORKED = "<reasoning>7 + 8 = 15, carry 1</reasoning>\n85"
MSG = [{"role": "user", "content": "What is 47 + 38?"}]


class Recorder(Defense):
    name = "test-recorder"

    def __init__(self) -> None:
        self.seen: list[RequestContext] = []

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        self.seen.append(ctx)
        return None


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def upstream(tiny_lm: TinyLM, recorder: Recorder) -> Iterator[RunningServer]:
    stack = DefenseStack([recorder, Scripted(lambda _: WORKED)])
    app = create_app({"tiny": ServedModel("tiny", tiny_lm)}, {UPSTREAM_KEY: "proxy"}, stack)
    with RunningServer(app) as srv:
        yield srv


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return []


@pytest.fixture(scope="module")
def stack() -> DefenseStack:
    return DefenseStack([
        Detector(tests=["volume"], volume_total=8, action="block"),
        LogprobGuard(max_top_logprobs=1),
        ReasoningGuard(mode="strip"),
    ])


@pytest.fixture(scope="module")
def proxy(upstream: RunningServer, stack: DefenseStack, lines: list[str]
          ) -> Iterator[RunningServer]:
    app = create_proxy_app(upstream.openai_base_url, "openai", UPSTREAM_KEY, stack, CLIENT_KEYS,
                           log=lines.append)
    with RunningServer(app) as srv:
        yield srv


def oa(srv: RunningServer, key: str = CLIENT2) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.openai_base_url, api_key=key, max_retries=0)


def test_defenses_apply_and_the_client_key_stays_home(proxy: RunningServer,
                                                      recorder: Recorder) -> None:
    with oa(proxy) as c:
        r = c.chat.completions.create(model="tiny", messages=MSG, max_tokens=60,  # type: ignore[arg-type]
                                      logprobs=True, top_logprobs=5, logit_bias={"90": 50})
    choice = r.choices[0]
    assert choice.message.content == "85"
    assert choice.logprobs is not None and choice.logprobs.content is not None
    assert "".join(t.token for t in choice.logprobs.content) == "85"
    assert all(len(t.top_logprobs) == 1 for t in choice.logprobs.content)
    assert r.usage is not None and r.usage.completion_tokens == len(WORKED) + 1
    seen = recorder.seen[-1]
    assert seen.key_id == "proxy"  # upstream saw the proxy's key, not the client's
    assert seen.params.top_logprobs == 1 and seen.params.logit_bias == {}


def test_streaming_through_the_proxy(proxy: RunningServer) -> None:
    with oa(proxy) as c:
        chunks = list(c.chat.completions.create(model="tiny", messages=MSG, max_tokens=60,  # type: ignore[arg-type]
                                                stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "85"


def test_a_flagged_key_is_blocked_at_the_proxy(proxy: RunningServer, stack: DefenseStack,
                                               recorder: Recorder) -> None:
    with oa(proxy, CLIENT) as c:
        for _ in range(8):
            c.chat.completions.create(model="tiny", messages=MSG, max_tokens=60)  # type: ignore[arg-type]
        sent = len(recorder.seen)
        with pytest.raises(openai.PermissionDeniedError) as err:
            c.chat.completions.create(model="tiny", messages=MSG, max_tokens=60)  # type: ignore[arg-type]
    assert err.value.type == "permission_error"
    assert len(recorder.seen) == sent  # the blocked request never went upstream
    [flag] = stack.audit.events(kind="flag")
    assert (flag.key_id, flag.query_index) == ("attacker-0", 8)


def test_upstream_errors_are_relayed_clearly(proxy: RunningServer) -> None:
    with oa(proxy) as c, pytest.raises(openai.NotFoundError) as err:
        c.chat.completions.create(model="no-such-model", messages=MSG)  # type: ignore[arg-type]
    assert "no-such-model" in err.value.message
    with oa(proxy, "fake-wrong-key-000000") as c, pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(model="tiny", messages=MSG)  # type: ignore[arg-type]


def test_anthropic_proxy(upstream: RunningServer) -> None:
    app = create_proxy_app(upstream.anthropic_base_url, "anthropic", UPSTREAM_KEY,
                           DefenseStack([ReasoningGuard()]), CLIENT_KEYS)
    with RunningServer(app) as srv, anthropic.Anthropic(
            base_url=srv.anthropic_base_url, api_key=CLIENT, max_retries=0) as c:
        m = c.messages.create(model="tiny", max_tokens=60, messages=MSG)  # type: ignore[arg-type]
        with c.messages.stream(model="tiny", max_tokens=60, messages=MSG) as s:  # type: ignore[arg-type]
            streamed = "".join(s.text_stream)
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == "85" and m.stop_reason == "end_turn"  # type: ignore[union-attr]
    assert streamed == "85"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_upstream_is_a_502_and_one_line() -> None:
    lines: list[str] = []
    app = create_proxy_app(f"http://127.0.0.1:{_closed_port()}/v1", "openai", UPSTREAM_KEY,
                           None, CLIENT_KEYS, log=lines.append)
    with RunningServer(app) as srv, oa(srv) as c:
        for _ in range(2):
            with pytest.raises(openai.APIStatusError) as err:
                c.chat.completions.create(model="tiny", messages=MSG)  # type: ignore[arg-type]
            assert err.value.status_code == 502 and "unreachable" in err.value.message
    assert len(lines) == 1 and "unreachable" in lines[0] and "\n" not in lines[0]
    for text in (lines[0], err.value.response.text):
        assert UPSTREAM_KEY not in text and CLIENT2 not in text


def test_upstream_refusing_the_proxy_key_is_a_502_naming_the_cause(
        upstream: RunningServer) -> None:
    lines: list[str] = []
    app = create_proxy_app(upstream.openai_base_url, "openai", "test-zq81k-xk2049fj77",
                           None, CLIENT_KEYS, log=lines.append)
    with RunningServer(app) as srv, oa(srv) as c, pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model="tiny", messages=MSG)  # type: ignore[arg-type]
    assert err.value.status_code == 502 and "credentials" in err.value.message
    assert len(lines) == 1 and "rejected the proxy's upstream key" in lines[0]
    assert "test-zq81k-xk2049fj77" not in lines[0] + err.value.response.text


def test_sampling_time_defenses_are_refused(upstream: RunningServer) -> None:
    with pytest.raises(ValueError, match="watermark: sampling-time defense"):
        create_proxy_app(upstream.openai_base_url, "openai", UPSTREAM_KEY,
                         DefenseStack([Watermark()]), CLIENT_KEYS)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_proxy_command(parser.add_subparsers())
    return parser.parse_args(["proxy", *argv])


def _run(args: argparse.Namespace) -> int:
    return int(args.func(args))


def test_cli_bad_input_is_one_line_and_exit_2(upstream: RunningServer, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--upstream", upstream.openai_base_url, "--api", "openai",
            "--upstream-key-env", "EB_TEST_UPSTREAM_KEY"]
    monkeypatch.delenv("EB_TEST_UPSTREAM_KEY", raising=False)
    assert _run(_args(*base)) == 2
    assert "environment variable EB_TEST_UPSTREAM_KEY is not set" in capsys.readouterr().err

    monkeypatch.setenv("EB_TEST_UPSTREAM_KEY", UPSTREAM_KEY)
    profile = tmp_path / "p.yaml"
    cases = [
        ("defenses:\n  - name: no-such-defense\n", "defenses.0.name: unknown defense"),
        ("defenses:\n  - {name: perturb, params: {poison_fraction: 2}}\n",
         "defenses.0.params.poison_fraction: must be a number in [0, 1], got 2"),
        ("defenses:\n  - {name: watermark}\n", "watermark: sampling-time defense"),
    ]
    for text, expected in cases:
        profile.write_text(text)
        assert _run(_args(*base, "--profile", str(profile))) == 2
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1 and str(profile) in err

    dead = ["--upstream", f"http://127.0.0.1:{_closed_port()}/v1", "--api", "openai",
            "--upstream-key-env", "EB_TEST_UPSTREAM_KEY"]
    assert _run(_args(*dead)) == 2
    err = capsys.readouterr().err
    assert "is unreachable" in err and err.count("\n") == 1

    monkeypatch.setenv("EB_TEST_UPSTREAM_KEY", "test-wr0ng-k3y-1234xq")
    assert _run(_args(*base)) == 2
    err = capsys.readouterr().err
    assert "refused the key in EB_TEST_UPSTREAM_KEY" in err and "test-wr0ng-k3y" not in err


def test_cli_starts_a_working_proxy(upstream: RunningServer, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from extractbench.cli.proxy import start_proxy

    monkeypatch.setenv("EB_TEST_UPSTREAM_KEY", UPSTREAM_KEY)
    profile = tmp_path / "p.yaml"
    profile.write_text("defenses:\n  - {name: reasoning-guard}\n")
    audit = tmp_path / "audit.jsonl"
    args = _args("--upstream", upstream.openai_base_url, "--api", "openai",
                 "--upstream-key-env", "EB_TEST_UPSTREAM_KEY", "--profile", str(profile),
                 "--key", f"team-a={CLIENT}", "--audit-log", str(audit))
    server, key_ids = start_proxy(args)
    try:
        assert key_ids == ["team-a"]
        with oa(server, CLIENT) as c:
            r = c.chat.completions.create(model="tiny", messages=MSG, max_tokens=60)  # type: ignore[arg-type]
        assert r.choices[0].message.content == "85"
    finally:
        server.stop()


BAD_CHAT: list[object] = [
    {"model": "tiny", "messages": MSG, "temperature": 3},
    {"model": "tiny", "messages": MSG, "n": 9},
    {"model": "tiny", "messages": MSG, "top_logprobs": 2},
    {"model": "tiny", "messages": MSG, "logprobs": True, "top_logprobs": 21},
    {"model": "tiny", "messages": MSG, "logit_bias": {"5": 101}},
    {"model": "tiny", "messages": MSG, "stop": ["a", "b", "c", "d", "e"]},
    {"model": "tiny", "messages": MSG, "stop": [1]},
    {"model": "tiny", "messages": MSG, "max_tokens": 0},
    {"model": "tiny", "messages": MSG, "stream_options": "yes"},
    {"model": "tiny", "messages": [{"content": "no role"}]},
    {"model": "tiny", "messages": [{"role": "system", "content": "x"}]},
    {"model": "tiny", "messages": []},
    {"messages": MSG},
    [1],
]
BAD_MESSAGES: list[object] = [
    {"model": "tiny", "max_tokens": 10, "messages": MSG, "temperature": 1.5},
    {"model": "tiny", "messages": MSG},
    {"model": "tiny", "max_tokens": 0, "messages": MSG},
    {"model": "tiny", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]},
    {"model": "tiny", "max_tokens": 10, "messages": [{"role": "user", "content": [{}]}]},
    {"model": "tiny", "max_tokens": 10, "messages": MSG, "top_k": -1},
    {"model": "tiny", "max_tokens": 10, "messages": MSG, "stop_sequences": "x"},
]


def _post(url: str, key: str, body: object, anthropic_api: bool) -> tuple[int, object]:
    import httpx

    headers = {"x-api-key": key}
    if anthropic_api:
        headers["anthropic-version"] = "2023-06-01"
    resp = httpx.post(url, json=body, headers=headers, timeout=30)
    return resp.status_code, resp.json()


@pytest.mark.parametrize("body", BAD_CHAT)
def test_the_proxy_validates_chat_exactly_like_the_reference_server(
        proxy: RunningServer, upstream: RunningServer, recorder: Recorder, body: object) -> None:
    sent = len(recorder.seen)
    direct = _post(f"{upstream.openai_base_url}/chat/completions", UPSTREAM_KEY, body, False)
    proxied = _post(f"{proxy.openai_base_url}/chat/completions", CLIENT2, body, False)
    assert direct[0] == 400
    assert proxied == direct  # same status, same message, same param
    assert len(recorder.seen) == sent  # neither reached a model


def test_the_proxy_validates_messages_exactly_like_the_reference_server(
        upstream: RunningServer, recorder: Recorder) -> None:
    app = create_proxy_app(upstream.anthropic_base_url, "anthropic", UPSTREAM_KEY, None,
                           CLIENT_KEYS)
    sent = len(recorder.seen)
    with RunningServer(app) as srv:
        for body in BAD_MESSAGES:
            direct = _post(f"{upstream.anthropic_base_url}/v1/messages", UPSTREAM_KEY, body,
                           True)
            proxied = _post(f"{srv.anthropic_base_url}/v1/messages", CLIENT2, body, True)
            assert direct[0] == 400, body
            assert proxied == direct, body
    assert len(recorder.seen) == sent


def test_invalid_json_is_the_same_400_at_the_proxy(proxy: RunningServer,
                                                   upstream: RunningServer) -> None:
    import httpx

    answers = [
        httpx.post(f"{base}/chat/completions", content=b"{not json",
                   headers={"authorization": f"Bearer {key}"}, timeout=30)
        for base, key in ((upstream.openai_base_url, UPSTREAM_KEY),
                          (proxy.openai_base_url, CLIENT2))
    ]
    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].json() == answers[1].json()
    assert "not valid JSON" in answers[1].json()["error"]["message"]


def test_logit_bias_ids_are_bounded_by_the_vocabulary_only_where_it_is_known(
        proxy: RunningServer, upstream: RunningServer) -> None:
    """The reference server knows its tokenizer (ids 0..259); the proxy checks the id is a
    non-negative integer and leaves the bound to the upstream, whose vocabulary it does not
    know (a real one has far more than 260 tokens)."""
    from extractbench.serving.wire_openai import ChatRequest

    body = {"model": "tiny", "messages": MSG, "logit_bias": {"abc": 1}}
    direct = _post(f"{upstream.openai_base_url}/chat/completions", UPSTREAM_KEY, body, False)
    proxied = _post(f"{proxy.openai_base_url}/chat/completions", CLIENT2, body, False)
    for status, answer in (direct, proxied):
        assert status == 400
        assert answer["error"]["param"] == "logit_bias"  # type: ignore[index]
        assert "key 'abc' is not a token id" in answer["error"]["message"]  # type: ignore[index]
    big = {"model": "tiny", "messages": MSG, "logit_bias": {"5000": 1}}
    assert ChatRequest.model_validate(big).logit_bias == {"5000": 1}
    with pytest.raises(ValueError, match=r"not a token id \(0\.\.259\)"):
        ChatRequest.model_validate(big, context={"vocab_size": 260})
