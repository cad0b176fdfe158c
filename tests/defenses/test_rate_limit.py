"""``rate-limit`` through the real SDK clients: 429 + retry-after from the request and token
buckets, ``insufficient_quota`` once a daily quota is spent, per-key independence."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import anthropic
import openai
import pytest

from extractbench.defenses import DefenseStack, RequestContext
from extractbench.defenses.rate_limit import RateLimit
from extractbench.endpoints.clients import Endpoint, EndpointError, QueryRequest, make_client
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.types import SamplingParams

KEYS = {f"fake-rl-{i}-a8f03c1d": f"attacker-{i}" for i in range(4)}
KEY = list(KEYS)
MSG = [{"role": "user", "content": "What is 2+3?"}]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def served(tiny_lm: TinyLM) -> dict[str, ServedModel]:
    return {"tiny": ServedModel("tiny", tiny_lm)}


def _server(served: dict[str, ServedModel], rl: RateLimit) -> RunningServer:
    return RunningServer(create_app(served, KEYS, DefenseStack([rl])))


def _oa(server: RunningServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key=key, max_retries=0)


def test_request_bucket_gives_429_with_retry_after_then_refills(
        served: dict[str, ServedModel], clock: Clock) -> None:
    rl = RateLimit(requests_per_minute=60, request_burst=3)
    rl.clock = clock
    with _server(served, rl) as srv, _oa(srv, KEY[0]) as c:
        for _ in range(3):
            c.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)
        with pytest.raises(openai.RateLimitError) as err:
            c.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)
        assert err.value.code == "rate_limit_exceeded"
        assert err.value.response.headers["retry-after"] == "1"  # one request per second
        assert err.value.response.headers["retry-after-ms"] == "1000"
        assert "60 requests per minute" in err.value.message
        assert KEY[0] not in err.value.response.text
        with _oa(srv, KEY[1]) as other:  # buckets are per key
            other.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)
        clock.t += 1.0
        c.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)


def test_anthropic_sdk_sees_rate_limit_error_shape(served: dict[str, ServedModel],
                                                   clock: Clock) -> None:
    rl = RateLimit(requests_per_minute=30, request_burst=1)
    rl.clock = clock
    with _server(served, rl) as srv, anthropic.Anthropic(
            base_url=srv.anthropic_base_url, api_key=KEY[0], max_retries=0) as c:
        c.messages.create(model="tiny", max_tokens=2, messages=MSG)  # type: ignore[arg-type]
        with pytest.raises(anthropic.RateLimitError) as err:
            c.messages.create(model="tiny", max_tokens=2, messages=MSG)  # type: ignore[arg-type]
    body = err.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert err.value.response.headers["retry-after"] == "2"


def test_daily_quota_is_insufficient_quota_until_the_window_ends(
        served: dict[str, ServedModel], clock: Clock) -> None:
    rl = RateLimit(requests_per_day=2)
    rl.clock = clock
    with _server(served, rl) as srv, _oa(srv, KEY[0]) as c:
        for _ in range(2):
            c.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)
        with pytest.raises(openai.RateLimitError) as err:
            c.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)
        assert err.value.code == "insufficient_quota"
        assert int(err.value.response.headers["retry-after"]) == 86400
        clock.t += 86400.0
        c.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)


def test_the_oracle_client_reads_the_quota_as_final(served: dict[str, ServedModel],
                                                    clock: Clock) -> None:
    rl = RateLimit(requests_per_day=1)
    rl.clock = clock

    async def twice(base_url: str) -> EndpointError:
        client = make_client(Endpoint(api="openai", base_url=base_url, model="tiny"))
        try:
            await client.complete(QueryRequest("hi", max_tokens=2), KEY[0])
            with pytest.raises(EndpointError) as err:
                await client.complete(QueryRequest("hi", max_tokens=2), KEY[0])
            return err.value
        finally:
            await client.aclose()

    with _server(served, rl) as srv:
        error = asyncio.run(twice(srv.openai_base_url))
    assert error.error_type == "quota"  # the oracle stops this key instead of waiting


def test_token_bucket_charges_worst_case_and_refunds_unused(clock: Clock) -> None:
    rl = RateLimit(tokens_per_minute=600, token_burst=100)
    rl.clock = clock
    ctx = RequestContext("openai", "/v1/chat/completions", "k", 0, "m", "x" * 10,
                         SamplingParams(max_tokens=40))
    assert rl.check_request(ctx) is None  # charges 10 + 40 = 50
    from extractbench.types import Generation

    rl.transform(ctx, [Generation("ab", "stop", prompt_tokens=12, completion_tokens=3)])
    # 15 used, 35 refunded: 85 left, so a second 50 fits and a third does not
    assert rl.check_request(ctx) is None
    rejection = rl.check_request(ctx)
    assert rejection is not None and rejection.status == 429
    assert rejection.retry_after == pytest.approx((50 - 35) / 10)  # 10 tokens per second
    big = RequestContext("openai", "/", "k", 1, "m", "x", SamplingParams(max_tokens=500))
    too_big = rl.check_request(big)
    assert too_big is not None and too_big.status == 400 and "max_tokens" in too_big.message


@pytest.mark.parametrize(("params", "message"), [
    ({}, "set at least one of"),
    ({"requests_per_minute": 0}, "requests_per_minute must be a number > 0"),
    ({"requests_per_minute": 10, "request_burst": 0}, "request_burst must be an integer >= 1"),
    ({"request_burst": 5}, "request_burst needs requests_per_minute"),
    ({"requests_per_day": 2.5}, "requests_per_day must be an integer >= 1"),
])
def test_bad_params_name_the_param_and_range(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimit(**params)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
