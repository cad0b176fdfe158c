"""One exception hierarchy: every error extractbench raises for a user to see derives from
:class:`ExtractbenchError`, so ``except ExtractbenchError`` catches them all.

The message of each is one line meant for the user (``FILE: field.path: problem (hint)`` for
bad input). Control-flow exceptions that never leave the package (a budget running out inside
an attack, a dead key inside the oracle) are not part of it.
"""

from __future__ import annotations

__all__ = ["ExtractbenchError"]


class ExtractbenchError(Exception):
    """Base class of every user-facing extractbench error."""
