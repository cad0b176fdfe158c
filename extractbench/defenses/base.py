"""The hook interface between an endpoint and its defenses.

A :class:`Defense` may act at three points of a request (DESIGN.md, "Defense stages"):

1. ``check_request`` — before generation: return a :class:`Rejection` to refuse the request
   (rate limit, block, throttle), or ``None`` to let it through. A defense may also record a
   detection event here.
   ``adjust`` — still before generation: rewrite the sampling settings the request asked for
   (cap ``top_logprobs``, drop ``logit_bias``, raise the temperature). In proxy mode the
   adjusted settings are what goes upstream.
2. ``logits_processors`` — at sampling time: processors that shift next-token logits
   (watermarks, antidistillation). Reference models only: a proxy refuses such a stack.
3. ``transform`` — after generation: rewrite the generations (strip or perturb logprobs,
   perturb answers) before they are serialised.

A :class:`DefenseStack` runs its defenses in order; an empty stack is the undefended profile.
Detection events go to an :class:`AuditLog` that the benchmark reads
(:mod:`extractbench.measure.defended`). ``DefenseStack.reset`` forgets every per-key state
between benchmark cells.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from extractbench.errors import ExtractbenchError
from extractbench.registry import Registry
from extractbench.types import Generation, LogitsProcessor, SamplingParams

Api = Literal["openai", "anthropic"]
EventKind = Literal["flag", "reject", "throttle", "degrade", "transform", "note"]


@dataclass(frozen=True)
class RequestContext:
    """What a defense knows about one request."""

    api: Api
    """Which API family the request came through."""
    route: str
    """The request path, e.g. ``/v1/chat/completions``."""
    key_id: str
    """Id of the API key (never the key itself)."""
    index: int
    """Query index of this request for this key: 0 for the key's first request."""
    model: str
    """Requested model name."""
    prompt: str
    """The text the model sees (last user message, or the completion prompt)."""
    params: SamplingParams
    """Sampling settings the request asked for."""
    n: int = 1
    """Number of samples requested."""
    time: float = field(default_factory=time.time)
    """Arrival time, seconds since the epoch; on a simulated clock, the client's simulated
    seconds since the campaign began."""
    simulated: bool = False
    """True when ``time`` is simulated: rates, quotas and windows count on it (see
    :meth:`Defense.now`)."""


@dataclass(frozen=True)
class Rejection:
    """A refused request; the server answers with ``status`` in the route's API error shape."""

    status: int
    """HTTP status, e.g. 429 or 403."""
    error_type: str | None
    """Anthropic-style error type (``rate_limit_error``, ``permission_error``, ...);
    ``None`` derives it from the status."""
    message: str
    """Human-readable reason, sent to the client."""
    retry_after: float | None = None
    """Seconds the client should wait; sent as the ``retry-after`` header."""
    code: str | None = None
    """OpenAI-style error code (``insufficient_quota``, ...); ``None`` derives it."""

    @classmethod
    def rate_limited(cls, message: str, retry_after: float | None = None) -> Rejection:
        return cls(429, "rate_limit_error", message, retry_after)

    @classmethod
    def quota_exceeded(cls, message: str, retry_after: float | None = None) -> Rejection:
        """429 with code ``insufficient_quota``: clients treat it as final, not as a pause."""
        return cls(429, "rate_limit_error", message, retry_after, code="insufficient_quota")

    @classmethod
    def forbidden(cls, message: str) -> Rejection:
        return cls(403, "permission_error", message)


@dataclass(frozen=True)
class AuditEvent:
    """One line of the audit log."""

    key_id: str
    time: float
    query_index: int
    defense: str
    kind: EventKind
    detail: dict[str, Any] = field(default_factory=dict)
    """JSON-serialisable extra data (scores, thresholds, status)."""


class AuditLog:
    """Thread-safe, append-only list of :class:`AuditEvent`, optionally mirrored to JSONL
    (one ``{"entry_type": "audit_event", ...}`` object per line)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._events: list[AuditEvent] = []
        self._flagged: set[str] = set()
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, event: AuditEvent) -> None:
        with self._lock:
            self._events.append(event)
            if event.kind == "flag":
                self._flagged.add(event.key_id)
            if self.path is not None:
                line = json.dumps({"entry_type": "audit_event", **asdict(event)}, sort_keys=True)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(line + "\n")

    def events(self, key_id: str | None = None, kind: EventKind | None = None) -> list[AuditEvent]:
        """A snapshot of the events, optionally filtered by key id and kind."""
        with self._lock:
            snap = list(self._events)
        return [
            e for e in snap
            if (key_id is None or e.key_id == key_id) and (kind is None or e.kind == kind)
        ]

    def flagged_at(self, key_id: str) -> int | None:
        """Query index of the first ``flag`` event for ``key_id`` (the detection metric)."""
        flags = self.events(key_id, "flag")
        return min((e.query_index for e in flags), default=None)

    def is_flagged(self, key_id: str) -> bool:
        """True once any defense has recorded a ``flag`` for ``key_id`` (constant time)."""
        with self._lock:
            return key_id in self._flagged

    def forget_flags(self) -> None:
        """Make :meth:`is_flagged` false for every key again (the events stay)."""
        with self._lock:
            self._flagged.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    @staticmethod
    def read(path: Path) -> list[AuditEvent]:
        """The events of a JSONL audit file (a torn last line, from a crash, is skipped)."""
        out: list[AuditEvent] = []
        if not path.exists():
            return out
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(data, dict) or data.pop("entry_type", None) != "audit_event":
                continue
            out.append(AuditEvent(**data))
        return out


class Defense:
    """Base class of a defense; override any of the stages. The defaults do nothing.

    The stack serialises calls to every stage, so a defense may keep per-key state in plain
    dicts. For the same reason a defense should not sleep in ``check_request`` (that stalls
    every key): reject with ``retry_after``. A defense with per-key state overrides
    :meth:`reset`. Constructor parameters are keyword-only and validated: a bad value raises
    ``ValueError`` naming the parameter and its allowed range.
    """

    name: ClassVar[str] = "defense"
    _audit: AuditLog | None = None

    @property
    def audit(self) -> AuditLog:
        """The audit log of the stack this defense belongs to (a private one until bound)."""
        if self._audit is None:
            self._audit = AuditLog()
        return self._audit

    def bind(self, audit: AuditLog) -> None:
        self._audit = audit

    def record(self, ctx: RequestContext, kind: EventKind, **detail: Any) -> AuditEvent:
        """Append an event about ``ctx`` to the audit log, under this defense's name."""
        event = AuditEvent(ctx.key_id, ctx.time, ctx.index, self.name, kind, detail)
        self.audit.record(event)
        return event

    def now(self, ctx: RequestContext) -> float:
        """The time rates, quotas and windows count at: the request's simulated time on a
        simulated clock, else this defense's ``clock`` (monotonic seconds; tests replace
        it)."""
        return ctx.time if ctx.simulated else self.clock()

    clock: Callable[[], float] = staticmethod(time.monotonic)

    @property
    def ordered(self) -> bool:
        """True when this defense's decisions depend on the order and timing of requests
        (per-key counters, histories, buckets): then a reproducible run sends each key's
        requests one at a time (:mod:`extractbench.campaign.simclock`). A defense that
        decides each request on its own says ``False``; the default is ``True``."""
        return True

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        return None

    def adjust(self, ctx: RequestContext) -> SamplingParams:
        """The sampling settings to use instead of ``ctx.params`` (default: unchanged)."""
        return ctx.params

    def logits_processors(self, ctx: RequestContext) -> list[LogitsProcessor]:
        return []

    def transform(self, ctx: RequestContext, generations: list[Generation]) -> list[Generation]:
        return generations

    def reset(self) -> None:
        """Forget per-key state (counters, histories): called between benchmark cells."""

    def check_stack(self, stack: Sequence[Defense]) -> None:
        """Raise ``ValueError`` when this defense cannot work in ``stack`` (e.g. it hands keys
        to a defense that is missing). Called once when the stack is built."""

    @property
    def at_sampling_time(self) -> bool:
        """True when this defense acts at sampling time (needs a reference model)."""
        return type(self).logits_processors is not Defense.logits_processors


DEFENSES: Registry[type[Defense]] = Registry(
    "defense",
    (
        "extractbench.defenses.rate_limit",
        "extractbench.defenses.logprob_guard",
        "extractbench.defenses.reasoning_guard",
        "extractbench.defenses.perturb",
        "extractbench.defenses.misinformation",
        "extractbench.defenses.detector",
        "extractbench.defenses.watermark",
        "extractbench.defenses.hydra",
        "extractbench.defenses.antidistill",
    ),
)
"""Defense classes by name, each registered with its parameter model; a scenario's
``DefenseSpec(name, params)`` builds ``cls(**params)`` (``DEFENSES.create(name, params)``
checks the parameters first)."""


class DefenseConfigError(ExtractbenchError, ValueError):
    """A defense stack that cannot be built; the message is one line naming where."""


class DefenseStack:
    """An ordered list of defenses, run as one."""

    def __init__(self, defenses: Sequence[Defense] = (), audit: AuditLog | None = None) -> None:
        self.defenses = list(defenses)
        self.audit = audit if audit is not None else AuditLog()
        self._lock = threading.RLock()
        for d in self.defenses:
            d.bind(self.audit)
        for d in self.defenses:
            d.check_stack(self.defenses)

    @classmethod
    def from_specs(
        cls,
        specs: Sequence[Any],
        audit: AuditLog | None = None,
        where: str = "defenses",
    ) -> DefenseStack:
        """Build from ``(registered name, params)`` pairs or objects with ``name`` and
        ``params`` (a scenario's ``DefenseSpec``). Raises :class:`DefenseConfigError`, one line
        naming ``where.i.name`` or ``where.i.params`` and the fix."""
        from extractbench.registry import UnknownNameError

        stages: list[Defense] = []
        for i, spec in enumerate(specs):
            name, params = _spec_parts(spec)
            try:
                factory = DEFENSES.get(name)
            except UnknownNameError as exc:
                raise DefenseConfigError(
                    f"{where}.{i}.name: {exc} (run `extractbench list defenses`)"
                ) from None
            problems = DEFENSES.validate_params(name, params, f"{where}.{i}.params")
            if problems:
                raise DefenseConfigError("; ".join(problems))
            try:
                stages.append(factory(**params))
            except (TypeError, ValueError) as exc:
                raise DefenseConfigError(f"{where}.{i}.params: {exc}") from None
        try:
            return cls(stages, audit)
        except ValueError as exc:
            raise DefenseConfigError(f"{where}: {exc}") from None

    def find(self, name: str) -> Defense | None:
        """The first defense registered as ``name`` in this stack, or ``None``."""
        return next((d for d in self.defenses if d.name == name), None)

    def reset(self, audit: AuditLog | None = None) -> None:
        """Forget every defense's per-key state; with ``audit``, record to it from now on
        (the runner gives each cell its own audit file)."""
        with self._lock:
            if audit is not None:
                self.audit = audit
                for d in self.defenses:
                    d.bind(audit)
            else:
                self.audit.forget_flags()
            for d in self.defenses:
                d.reset()

    @property
    def ordered(self) -> bool:
        """True when any defense's decisions depend on request order (see
        :attr:`Defense.ordered`)."""
        return any(d.ordered for d in self.defenses)

    def sampling_defenses(self) -> list[str]:
        """Names of the sampling-time defenses (which a proxy cannot apply)."""
        return [d.name for d in self.defenses if d.at_sampling_time]

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        """The first rejection in stack order (recorded as a ``reject`` event), or ``None``."""
        with self._lock:
            for d in self.defenses:
                rejection = d.check_request(ctx)
                if rejection is not None:
                    d.record(ctx, "reject", status=rejection.status, message=rejection.message)
                    return rejection
        return None

    def adjust(self, ctx: RequestContext) -> RequestContext:
        """``ctx`` with the sampling settings every defense adjusted, in stack order."""
        with self._lock:
            for d in self.defenses:
                params = d.adjust(ctx)
                if params != ctx.params:
                    ctx = replace(ctx, params=params)
        return ctx

    def logits_processors(self, ctx: RequestContext) -> list[LogitsProcessor]:
        with self._lock:
            return [p for d in self.defenses for p in d.logits_processors(ctx)]

    def transform(self, ctx: RequestContext, generations: list[Generation]) -> list[Generation]:
        with self._lock:
            for d in self.defenses:
                generations = d.transform(ctx, generations)
        return generations

    def __len__(self) -> int:
        return len(self.defenses)


def _spec_parts(spec: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, tuple):
        name, params = spec
    else:
        name, params = spec.name, spec.params
    if not isinstance(params, Mapping):
        raise DefenseConfigError(f"defense {name!r}: params must be a mapping")
    return str(name), dict(params)
