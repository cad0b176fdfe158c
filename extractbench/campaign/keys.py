"""The attacker's API keys behind one oracle: round-robin over live keys, and a key is dead at
its first 401/403 (later queries on it are not sent). Until the endpoint has accepted a key
once, its requests go one at a time, so a wrong key costs exactly one request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from extractbench.campaign.outcomes import FATAL, Failure
from extractbench.endpoints.clients import Completion, EndpointClient, EndpointError, QueryRequest

__all__ = ["Key", "KeyDead", "KeyRing"]


@dataclass
class Key:
    key_id: str
    api_key: str = field(repr=False)
    verified: bool = False  # the endpoint has accepted this key once
    dead: Failure | None = None  # the auth/permission failure that killed it
    probe: asyncio.Lock | None = None


class KeyDead(Exception):
    """The key died while this request waited for its turn to probe it."""


class KeyRing:
    """``(key_id, api_key)`` pairs; ``key_id`` is what logs show, ``api_key`` never leaves."""

    def __init__(self, keys: Sequence[tuple[str, str]]) -> None:
        if not keys:
            raise ValueError("an Oracle needs at least one (key_id, api_key)")
        if len({k for k, _ in keys}) != len(keys):
            raise ValueError("key ids must be unique")
        self._keys = [Key(key_id, api_key) for key_id, api_key in keys]
        self.secrets = [api_key for _, api_key in keys]
        """What the logs scrub."""
        self._rr = 0
        self.fatal_error: Failure | None = None
        """The first auth/permission/quota failure (e.g. a wrong API key)."""

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def key_ids(self) -> list[str]:
        return [k.key_id for k in self._keys]

    @property
    def dead(self) -> bool:
        """True when every key has failed authentication: nothing more can be sent."""
        return all(k.dead is not None for k in self._keys)

    def bind(self) -> None:
        """Create the per-key probe locks (in the event loop that will use them)."""
        for key in self._keys:
            key.probe = asyncio.Lock()

    def pick(self, key_index: int | None) -> Key:
        if key_index is not None:
            return self._keys[key_index]
        n = len(self._keys)
        for step in range(n):
            key = self._keys[(self._rr + step) % n]
            if key.dead is None:
                self._rr = (self._rr + step + 1) % n
                return key
        return self._keys[self._rr % n]  # all dead: any one reports the error

    def pick_as_logged(self, key_id: str) -> Key | None:
        """The key a logged query used, picked as :meth:`pick` picked it then (the round-robin
        goes on after it); None when no key has that id."""
        for i, key in enumerate(self._keys):
            if key.key_id == key_id:
                self._rr = (i + 1) % len(self._keys)
                return key
        return None

    def kill(self, key: Key, failure: Failure) -> None:
        if key.dead is None:
            key.dead = failure
        if self.fatal_error is None:
            self.fatal_error = failure

    async def send(self, client: EndpointClient, key: Key, req: QueryRequest,
                   on_send: Callable[[], None] = lambda: None) -> Completion:
        """One request with ``key``; raises :class:`KeyDead` when the key died while this
        request waited to probe it. ``on_send`` runs just before the request goes out."""
        if key.verified:
            on_send()
            return await client.complete(req, key.api_key)
        assert key.probe is not None
        async with key.probe:
            if key.dead is not None:
                raise KeyDead
            on_send()
            try:
                completion = await client.complete(req, key.api_key)
            except EndpointError as e:
                if e.status is not None and e.error_type not in FATAL:
                    key.verified = True
                raise
            key.verified = True
            return completion
