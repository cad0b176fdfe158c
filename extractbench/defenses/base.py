"""The hook interface between an endpoint and its defenses.

A :class:`Defense` may act at three points of a request (DESIGN.md, "Defense stages"):

1. ``check_request`` — before generation: return a :class:`Rejection` to refuse the request
   (rate limit, block), or ``None`` to let it through. A defense may also sleep here (throttle)
   or record a detection event.
2. ``logits_processors`` — at sampling time: processors that shift next-token logits
   (watermarks, antidistillation). Reference models only.
3. ``transform`` — after generation: rewrite the generations (strip or perturb logprobs,
   perturb answers) before they are serialised.

A :class:`DefenseStack` runs its defenses in order; an empty stack is the undefended profile.
Detection events go to an :class:`AuditLog` that the benchmark reads.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from extractbench.generation import Generation, LogitsProcessor, SamplingParams
from extractbench.registry import Registry

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
    """Arrival time, seconds since the epoch."""


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

    @classmethod
    def rate_limited(cls, message: str, retry_after: float | None = None) -> Rejection:
        return cls(429, "rate_limit_error", message, retry_after)

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
    """Thread-safe, append-only list of :class:`AuditEvent`, optionally mirrored to JSONL."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._events: list[AuditEvent] = []
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def record(self, event: AuditEvent) -> None:
        with self._lock:
            self._events.append(event)
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

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)


class Defense:
    """Base class of a defense; override any of the three stages. The defaults do nothing.

    The stack serialises calls to ``check_request``, ``logits_processors`` and ``transform``,
    so a defense may keep per-key state in plain dicts. For the same reason a defense should
    not sleep in ``check_request`` (that stalls every key): reject with ``retry_after``.
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
        event = AuditEvent(ctx.key_id, time.time(), ctx.index, self.name, kind, detail)
        self.audit.record(event)
        return event

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        return None

    def logits_processors(self, ctx: RequestContext) -> list[LogitsProcessor]:
        return []

    def transform(self, ctx: RequestContext, generations: list[Generation]) -> list[Generation]:
        return generations


DEFENSES: Registry[type[Defense]] = Registry("defense")
"""Defense classes by name; a scenario's ``DefenseSpec(name, params)`` builds ``cls(**params)``."""


class DefenseStack:
    """An ordered list of defenses, run as one."""

    def __init__(self, defenses: Sequence[Defense] = (), audit: AuditLog | None = None) -> None:
        self.defenses = list(defenses)
        self.audit = audit if audit is not None else AuditLog()
        self._lock = threading.RLock()
        for d in self.defenses:
            d.bind(self.audit)

    @classmethod
    def from_specs(
        cls, specs: Sequence[tuple[str, dict[str, Any]]], audit: AuditLog | None = None
    ) -> DefenseStack:
        """Build from ``(registered name, params)`` pairs."""
        return cls([DEFENSES.get(name)(**params) for name, params in specs], audit)

    def check_request(self, ctx: RequestContext) -> Rejection | None:
        """The first rejection in stack order (recorded as a ``reject`` event), or ``None``."""
        with self._lock:
            for d in self.defenses:
                rejection = d.check_request(ctx)
                if rejection is not None:
                    d.record(ctx, "reject", status=rejection.status, message=rejection.message)
                    return rejection
        return None

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
