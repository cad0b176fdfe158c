"""The one request pipeline both apps (reference server and defense proxy) run.

Per request: authenticate the key (its id is what defenses and logs see) -> the key's query
index -> ``stack.check_request`` (a rejection raises :class:`ApiError` in the API's error
shape) -> ``stack.adjust`` -> the sampling-time processors (``stack.logits_processors``; only
where the model samples locally) -> the generation step, which is what differs between apps
(the reference server's served model, or the proxy's upstream call) -> ``stack.transform``.
Audit events are recorded by the stages into ``stack.audit``.

    pipeline = pipeline_of(app)       # any app made by create_app or create_proxy_app
    pipeline.reset(AuditLog(path))    # fresh query indices and defense state, a new audit file

On a **simulated clock** (``Pipeline(..., sim_clock=True)``: the reference endpoint the
benchmark starts), a request's time is the ``x-extractbench-sim-time`` header its client
sent (simulated seconds since the campaign began), so rate limits, quotas and detector windows
run on the campaign's clock, not the machine's: a day of traffic passes in seconds and the same
traffic gets the same decisions on every run. Without the header, or on a wall clock (every
endpoint a vendor or user runs: a client must not choose the time its quota is counted at), a
request's time is when it arrived.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI

from extractbench.defenses import Api, AuditLog, DefenseStack, RequestContext
from extractbench.serving.errors import ApiError
from extractbench.types import Generation, LogitsProcessor, SamplingParams

__all__ = ["AsyncGenerate", "Generate", "Pipeline", "Query", "Step", "attach", "pipeline_of"]


@dataclass(frozen=True)
class Query:
    """One request as the wire layer read it (before the pipeline gives it an index)."""

    api: Api
    route: str
    key_id: str
    model: str
    prompt: str
    params: SamplingParams
    n: int = 1
    sim_time: float | None = None
    """The client's simulated time (header ``x-extractbench-sim-time``); only a pipeline on
    a simulated clock reads it."""


SIM_TIME_HEADER = "x-extractbench-sim-time"


@dataclass(frozen=True)
class Step:
    """What the generation step receives."""

    asked: RequestContext
    """The request as the client asked it."""
    ctx: RequestContext
    """The request as the defenses adjusted it: what to generate."""
    processors: list[LogitsProcessor]
    """Sampling-time defenses' logits processors (always empty without local sampling)."""


Generate = Callable[[Step], list[Generation]]
"""A blocking generation step (the reference model)."""
AsyncGenerate = Callable[[Step], Awaitable[list[Generation]]]
"""An asynchronous generation step (the proxy's upstream call)."""


class Pipeline:
    """Keys, per-key query indices and the defense stack of one app, and the request flow.

    ``local_sampling=False`` (a proxy in front of a remote model) refuses a stack with
    sampling-time defenses: nothing could apply their logits processors.
    """

    def __init__(self, stack: DefenseStack | None, keys: dict[str, str], *,
                 local_sampling: bool = True, sim_clock: bool = False) -> None:
        stack = stack if stack is not None else DefenseStack()
        sampling = stack.sampling_defenses()
        if sampling and not local_sampling:
            raise ValueError(
                f"{', '.join(sampling)}: sampling-time defense (it shifts the model's logits), "
                "which a proxy cannot apply to a remote model; remove it from the profile or "
                "serve a reference model with `extractbench serve --profile`")
        self.stack = stack
        self.keys = dict(keys)
        """API key -> key id."""
        self.local_sampling = local_sampling
        self.sim_clock = sim_clock
        """True: a request's time is its client's simulated time (see the module docstring)."""
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"Pipeline({len(self.stack)} defenses, "
                f"keys={sorted(set(self.keys.values()))})")

    def key_id(self, key: str | None) -> str:
        """The id of a presented key, else a 401 (the key is never echoed)."""
        if key is None:
            raise ApiError(401,
                           "Missing API key: send `Authorization: Bearer KEY` or `x-api-key`.")
        key_id = self.keys.get(key)
        if key_id is None:
            raise ApiError(401, "Incorrect API key provided.")
        return key_id

    def sim_time(self, headers: Mapping[str, str]) -> float | None:
        """The simulated time a request's headers carry, on a simulated clock; ``None`` on a
        wall clock or without the header; a 400 naming the header when it is not a finite
        number >= 0."""
        if not self.sim_clock:
            return None
        raw = headers.get(SIM_TIME_HEADER)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise ApiError(400, f"Header {SIM_TIME_HEADER} must be a number of simulated "
                           "seconds >= 0.", param=SIM_TIME_HEADER)
        return value

    def next_index(self, key_id: str) -> int:
        """This key's query index (0 for its first request), then count the request."""
        with self._lock:
            index = self._counts[key_id]
            self._counts[key_id] += 1
            return index

    def admit(self, query: Query) -> Step:
        """Index, check and adjust ``query``: the step to generate, or :class:`ApiError`."""
        asked = RequestContext(
            api=query.api, route=query.route, key_id=query.key_id,
            index=self.next_index(query.key_id), model=query.model, prompt=query.prompt,
            params=query.params, n=query.n,
            time=query.sim_time if query.sim_time is not None else time.time(),
            simulated=query.sim_time is not None,
        )
        rejection = self.stack.check_request(asked)
        if rejection is not None:
            raise ApiError.from_rejection(rejection)
        ctx = self.stack.adjust(asked)
        processors = self.stack.logits_processors(ctx) if self.local_sampling else []
        return Step(asked, ctx, processors)

    def finish(self, step: Step, generations: list[Generation]) -> list[Generation]:
        """The response-stage defenses on what the generation step produced."""
        return self.stack.transform(step.ctx, generations)

    def run(self, query: Query, generate: Generate) -> list[Generation]:
        """The whole pipeline with a blocking generation step (call from a worker thread)."""
        step = self.admit(query)
        return self.finish(step, generate(step))

    async def run_async(self, query: Query, generate: AsyncGenerate) -> list[Generation]:
        """The whole pipeline with an asynchronous generation step."""
        step = self.admit(query)
        return self.finish(step, await generate(step))

    def reset(self, audit: AuditLog | None = None) -> None:
        """Start every key's query index at 0 again and forget the defenses' per-key state
        (between benchmark cells); with ``audit``, the stack records to it from now on."""
        with self._lock:
            self._counts.clear()
        self.stack.reset(audit)


_ATTR = "extractbench_pipeline"


def attach(app: FastAPI, pipeline: Pipeline) -> None:
    """Make ``pipeline`` the one :func:`pipeline_of` returns for ``app``."""
    setattr(app.state, _ATTR, pipeline)


def pipeline_of(app: FastAPI) -> Pipeline:
    """The pipeline of an app made by ``create_app`` or ``create_proxy_app``."""
    pipeline = getattr(app.state, _ATTR, None)
    if not isinstance(pipeline, Pipeline):
        raise TypeError(f"{app.title!r} is not an extractbench serving app "
                        "(make it with create_app or create_proxy_app)")
    return pipeline
