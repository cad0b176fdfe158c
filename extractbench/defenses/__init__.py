"""Endpoint-side defenses: the hook interface (:mod:`.base`) and the registered defenses,
one module each: ``rate-limit``, ``logprob-guard``, ``reasoning-guard``, ``perturb``,
``misinformation``, ``detector``, ``watermark`` (see docs/defenses.md)."""

from extractbench.defenses.base import (
    DEFENSES,
    Api,
    AuditEvent,
    AuditLog,
    Defense,
    DefenseConfigError,
    DefenseStack,
    EventKind,
    Rejection,
    RequestContext,
)

__all__ = [
    "DEFENSES",
    "Api",
    "AuditEvent",
    "AuditLog",
    "Defense",
    "DefenseConfigError",
    "DefenseStack",
    "EventKind",
    "Rejection",
    "RequestContext",
]
