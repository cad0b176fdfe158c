"""The shared pipeline and its public handle: ``pipeline_of(app)`` for both apps, ``reset``
between cells (query indices from 0, defense state forgotten, a new audit log), the old
``app.state`` attributes pointing at the same objects, and a torch-free proxy path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fastapi import FastAPI

from extractbench.defenses import AuditLog, Defense, DefenseStack, Rejection, RequestContext
from extractbench.defenses.watermark import Watermark
from extractbench.reference.lm import TinyLM
from extractbench.serving import (
    ApiError,
    Pipeline,
    RunningServer,
    ServedModel,
    create_app,
    create_proxy_app,
    pipeline_of,
)
from extractbench.serving.pipeline import Query, Step
from extractbench.types import Generation, SamplingParams

KEY = "pipe-test-key-4f1c2a"
KEYS = {KEY: "k-0"}
MSG = [{"role": "user", "content": "1+1"}]


class Recorder(Defense):
    name = "test-recorder"

    def __init__(self) -> None:
        self.seen: list[RequestContext] = []

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        self.seen.append(ctx)
        if ctx.index == 1:  # every key's second query is refused (and audited)
            return Rejection.forbidden("second query")
        return None


@pytest.fixture()
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture()
def app(tiny_lm: TinyLM, recorder: Recorder) -> FastAPI:
    return create_app({"tiny": ServedModel("tiny", tiny_lm)}, KEYS, DefenseStack([recorder]))


def _ask(srv: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.openai_base_url, api_key=KEY, max_retries=0)


def test_pipeline_of_the_reference_app(app: FastAPI) -> None:
    pipeline = pipeline_of(app)
    assert isinstance(pipeline, Pipeline)
    assert app.state.extractbench is pipeline  # the old attribute, until the runner moves
    assert pipeline.keys == KEYS and len(pipeline.stack) == 1


def test_pipeline_of_the_proxy_app() -> None:
    stack = DefenseStack()
    app = create_proxy_app("http://127.0.0.1:9/v1", "openai", "up", stack, KEYS)
    pipeline = pipeline_of(app)
    assert pipeline.stack is stack and not pipeline.local_sampling
    legacy = app.state.extractbench_proxy
    assert legacy.stack is stack and legacy.pipeline is pipeline


def test_pipeline_of_another_app_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not an extractbench serving app"):
        pipeline_of(FastAPI())


def test_reset_restarts_indices_and_switches_the_audit_log(
        app: FastAPI, recorder: Recorder, tmp_path: Path) -> None:
    pipeline = pipeline_of(app)
    first = pipeline.stack.audit
    with RunningServer(app) as srv, _ask(srv) as c:
        c.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)  # type: ignore[arg-type]
        with pytest.raises(openai.PermissionDeniedError):
            c.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)  # type: ignore[arg-type]
        assert [e.kind for e in first.events()] == ["reject"]

        path = tmp_path / "cell.jsonl"
        fresh = AuditLog(path)
        pipeline.reset(fresh)
        assert pipeline.stack.audit is fresh
        c.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)  # type: ignore[arg-type]
        with pytest.raises(openai.PermissionDeniedError):
            c.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)  # type: ignore[arg-type]
    assert [ctx.index for ctx in recorder.seen] == [0, 1, 0, 1]
    assert len(first.events()) == 1  # the new cell's events went to the new log
    assert [(e.kind, e.query_index) for e in fresh.events()] == [("reject", 1)]
    assert path.read_text().count("\n") == 1


def test_reset_without_audit_keeps_the_log() -> None:
    pipeline = Pipeline(DefenseStack(), KEYS)
    audit = pipeline.stack.audit
    assert [pipeline.next_index("k-0") for _ in range(3)] == [0, 1, 2]
    pipeline.reset()
    assert pipeline.next_index("k-0") == 0 and pipeline.stack.audit is audit


def test_the_pipeline_runs_in_order_with_any_generation_step() -> None:
    recorder = Recorder()
    pipeline = Pipeline(DefenseStack([recorder]), KEYS)
    steps: list[Step] = []

    def generate(step: Step) -> list[Generation]:
        steps.append(step)
        return [Generation("ok", "stop", 1, 1)]

    query = Query("openai", "/v1/chat/completions", "k-0", "m", "p", SamplingParams())
    assert [g.text for g in pipeline.run(query, generate)] == ["ok"]
    assert steps[0].asked.index == 0 and steps[0].processors == []
    with pytest.raises(ApiError, match="second query") as err:
        pipeline.run(query, generate)
    assert err.value.status == 403 and len(steps) == 1  # a rejected query is never generated


def test_without_local_sampling_a_sampling_time_defense_is_refused() -> None:
    with pytest.raises(ValueError, match="watermark: sampling-time defense"):
        Pipeline(DefenseStack([Watermark()]), KEYS, local_sampling=False)
    assert Pipeline(DefenseStack([Watermark()]), KEYS).local_sampling


def test_the_proxy_path_does_not_import_torch() -> None:
    code = ("import extractbench.serving.proxy, extractbench.serving.pipeline, "
            "extractbench.serving.wire_openai, extractbench.serving.wire_anthropic, sys; "
            "from extractbench.serving import create_proxy_app, pipeline_of; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_served_model_is_still_importable_from_serving() -> None:
    from extractbench.reference import served
    from extractbench.serving import ServedGeneration, stop_sequence_of

    assert ServedModel is served.ServedModel and ServedGeneration is served.ServedGeneration
    assert stop_sequence_of is served.stop_sequence_of


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
