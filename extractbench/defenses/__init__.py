"""Endpoint-side defenses: the hook interface and (later) the registered defenses."""

from extractbench.defenses.base import (
    DEFENSES,
    Api,
    AuditEvent,
    AuditLog,
    Defense,
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
    "DefenseStack",
    "EventKind",
    "Rejection",
    "RequestContext",
]
