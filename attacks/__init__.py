"""Attack strategies, one module each, registered by name in :data:`ATTACKS`."""

from attacks.base import ATTACKS, Attack, AttackContext

__all__ = ["ATTACKS", "Attack", "AttackContext"]
