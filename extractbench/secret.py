"""API keys that do not show themselves.

:class:`Secret` is a ``str`` (the SDKs and HTTP headers take it as the key it is) whose
``repr`` is ``Secret('sk-…', 40 chars)``-style redaction. A traceback with locals (``pytest
-l``, ``traceback`` with ``capture_locals``), a dataclass or tuple ``repr``, a ``%r`` in a
log line: all show the redacted form. Every key extractbench holds enters as a Secret where
it is read (run-local keys when minted, vendor keys from the environment, server and proxy
keys from files, variables or flags).
"""

from __future__ import annotations

__all__ = ["Secret", "redacted"]


class Secret(str):
    """A key: its value for whoever uses it, ``[redacted]`` for whoever looks at it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return redacted(self)

    def __reduce__(self) -> tuple[object, ...]:  # never pickled into a file by accident
        raise TypeError("a Secret cannot be pickled")


def redacted(key: str) -> str:
    """What a key looks like in any display: its length only."""
    return f"<secret: {len(key)} chars>"
