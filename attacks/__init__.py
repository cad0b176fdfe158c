"""Attack strategies, one module each, registered by name in :data:`ATTACKS`.

This folder is the package ``extractbench.attacks`` (``extractbench/attacks`` links here); it
is not importable under any other name, so a user's own ``attacks/`` folder never shadows it.
"""

if __name__ != "extractbench.attacks":  # pragma: no cover - the guard itself
    raise ImportError(f"the attacks folder is the package extractbench.attacks; import it as "
                      f"that, not as {__name__!r}")

from .base import ATTACKS, Attack, AttackContext

__all__ = ["ATTACKS", "Attack", "AttackContext"]
