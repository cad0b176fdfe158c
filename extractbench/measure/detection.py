"""Detection metrics from a cell's audit log (DESIGN.md "Metrics": detection).

The defended endpoint writes an :class:`~extractbench.defenses.AuditLog` (JSONL); its ``flag``
events carry the key id, the time, the key's query index *at the endpoint* and (for the
``detector``) the hash of the flagged prompt. From them and the attack's harvest:

- ``flagged_at``: the attacker's query index (the oracle's, as in the harvest) of the query
  on which any attacker key was first flagged, or ``None``;
- ``fpr``: the share of benign keys flagged at least once;
- ``harmed_rate``: the share of benign keys any defense acted on at least once: flagged,
  refused (a block, a rate limit, a throttle's 429), throttled, given a degraded or poisoned
  answer, or an answer with something they asked for taken away (logprobs, reasoning,
  ``logit_bias``); ``benign_harms`` counts those events by kind;
- :func:`before_flag`: the harvest of the queries before ``flagged_at`` — what a student
  trained "up to the flag" may use (``transfer_at_flag``).

The endpoint counts queries per key and retries too, the oracle counts queries across keys, so
the two indices differ; a flag is mapped to the oracle's index by the flagged prompt's hash and
the time (see :func:`harvest_index`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from extractbench.defenses.base import AuditEvent, AuditLog
from extractbench.logs.harvest import Entry, ErrorEntry, ResponseEntry

__all__ = [
    "DetectionSummary",
    "Flag",
    "before_flag",
    "false_positive_rate",
    "first_flag",
    "flagged_keys",
    "flags",
    "harmed_keys",
    "harms",
    "harvest_index",
    "read_events",
    "summarize",
]

ATTACKER_PREFIX = "attacker-"
BENIGN_PREFIX = "benign-"

HARM_KINDS = ("flag", "reject", "throttle", "degrade", "transform")
"""Audit event kinds that mean a defense acted on a request: on a benign key, a harm."""


@dataclass(frozen=True)
class Flag:
    """One ``flag`` event."""

    key_id: str
    time: float
    """Seconds since the epoch (on a simulated clock: simulated seconds since the campaign
    began)."""
    endpoint_index: int
    """The key's query index at the endpoint (0 for its first request there)."""
    defense: str
    test: str | None
    """Which test fired (the detector's ``prada``, ``duplicate``, ``volume``), if said."""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        """``defense:test`` (or the defense alone), for ``CellRecord.flag_reason``."""
        return f"{self.defense}:{self.test}" if self.test else self.defense

    @classmethod
    def of(cls, event: AuditEvent) -> Flag:
        test = event.detail.get("test")
        return cls(event.key_id, event.time, event.query_index, event.defense,
                   test if isinstance(test, str) else None, dict(event.detail))

    @property
    def prompt_hash(self) -> str | None:
        value = self.detail.get("prompt_hash")
        return value if isinstance(value, str) else None


def read_events(path: Path) -> list[AuditEvent]:
    """The events of an audit JSONL file (empty when the file does not exist)."""
    return AuditLog.read(path)


def flags(events: Iterable[AuditEvent], *, prefix: str | None = None,
          keys: Iterable[str] | None = None, since: float | None = None) -> list[Flag]:
    """``flag`` events in time order, optionally only for keys with ``prefix``, in ``keys``,
    or at/after ``since`` (epoch seconds)."""
    wanted = set(keys) if keys is not None else None
    out = [
        Flag.of(e)
        for e in events
        if e.kind == "flag"
        and (prefix is None or e.key_id.startswith(prefix))
        and (wanted is None or e.key_id in wanted)
        and (since is None or e.time >= since)
    ]
    return sorted(out, key=lambda f: (f.time, f.key_id, f.endpoint_index))  # ties: by key


def first_flag(events: Iterable[AuditEvent], prefix: str = ATTACKER_PREFIX,
               since: float | None = None) -> Flag | None:
    """The earliest flag of any key with ``prefix`` (default: the attacker's keys)."""
    found = flags(events, prefix=prefix, since=since)
    return found[0] if found else None


def flagged_keys(events: Iterable[AuditEvent], keys: Iterable[str],
                 since: float | None = None) -> set[str]:
    """Which of ``keys`` were flagged at least once."""
    return {f.key_id for f in flags(events, keys=keys, since=since)}


def harms(events: Iterable[AuditEvent], keys: Iterable[str],
          since: float | None = None) -> dict[str, int]:
    """How many times a defense acted on ``keys``' requests, by event kind (``flag``,
    ``reject``, ``throttle``, ``degrade``, ``transform``); kinds that never happened are left
    out."""
    counts: dict[str, int] = {}
    for e in _acted_on(events, keys, since):
        counts[e.kind] = counts.get(e.kind, 0) + 1
    return counts


def harmed_keys(events: Iterable[AuditEvent], keys: Iterable[str],
                since: float | None = None) -> set[str]:
    """Which of ``keys`` a defense acted on at least once (any of :data:`HARM_KINDS`)."""
    return {e.key_id for e in _acted_on(events, keys, since)}


def _acted_on(events: Iterable[AuditEvent], keys: Iterable[str],
              since: float | None) -> Iterator[AuditEvent]:
    wanted = set(keys)
    return (e for e in events if e.key_id in wanted and e.kind in HARM_KINDS
            and (since is None or e.time >= since))


def false_positive_rate(events: Iterable[AuditEvent], benign_keys: Sequence[str],
                        since: float | None = None) -> float | None:
    """Flagged benign keys / benign keys (``None`` without benign keys)."""
    if not benign_keys:
        return None
    return len(flagged_keys(events, benign_keys, since)) / len(set(benign_keys))


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _sent_at(e: ResponseEntry | ErrorEntry) -> float:
    """When the attempt was sent: its simulated time on a simulated clock (what the flag's
    time is then); else a response is logged on arrival, ``latency_s`` after."""
    if e.sim_s is not None:
        return e.sim_s
    t = _epoch(e.time)
    return t - e.latency_s if isinstance(e, ResponseEntry) else t


def harvest_index(flag: Flag | AuditEvent, entries: Iterable[Entry]) -> int | None:
    """The oracle index of the query the endpoint flagged: among the flagged key's attempts
    with the flagged prompt's hash, the one sent closest to the flag's time. Without a prompt
    hash (or no such attempt), the first query of that key logged at or after the flag time;
    the index after the last query when there is none; ``None`` for an empty harvest."""
    attempts: list[ResponseEntry | ErrorEntry] = [
        e for e in entries
        if isinstance(e, ResponseEntry) or (isinstance(e, ErrorEntry) and e.attempt > 0)
    ]
    if not attempts:
        return None
    if isinstance(flag, AuditEvent):
        flag = Flag.of(flag)
    mine = [e for e in attempts if e.key_id == flag.key_id]
    h = flag.prompt_hash
    if h is not None:
        same = [e for e in mine if (e.request.prompt_hash if isinstance(e, ResponseEntry)
                                    else e.prompt_hash) == h]
        if same:
            return min(same, key=lambda e: (abs(_sent_at(e) - flag.time), e.index)).index
    later = [e.index for e in mine
             if (e.sim_s if e.sim_s is not None else _epoch(e.time)) >= flag.time]
    if later:
        return min(later)
    return max(e.index for e in attempts) + 1


def before_flag(entries: Iterable[Entry], flagged_at: int | None) -> list[Entry]:
    """The harvest as it stood at the flag: responses and errors of queries before
    ``flagged_at`` (by oracle index), with every segment and note kept (attacks record their
    training prompts in notes). Feed it to ``attacks.base.train_pairs`` for the student of
    ``transfer_at_flag``. ``flagged_at=None`` (never flagged) keeps everything."""
    return [e for e in entries
            if flagged_at is None or not isinstance(e, ResponseEntry | ErrorEntry)
            or e.index < flagged_at]


@dataclass(frozen=True)
class DetectionSummary:
    """What a cell's record needs from its audit log (``CellRecord`` field names)."""

    flagged_at: int | None
    flag_reason: str | None
    flag_key: str | None
    flag_time: float | None
    benign_keys: int
    benign_flagged_keys: int
    fpr: float | None
    attacker_keys_flagged: int = 0
    benign_harmed_keys: int = 0
    harmed_rate: float | None = None
    benign_harms: dict[str, int] = field(default_factory=dict)


def summarize(events: Sequence[AuditEvent], harvest: Sequence[Entry],
              benign_keys: Sequence[str], *, attacker_prefix: str = ATTACKER_PREFIX,
              since: float | None = None) -> DetectionSummary:
    """Detection figures of one cell: the attacker's first flag mapped to the harvest's query
    index, the false-positive rate and the harmed-key rate over ``benign_keys``."""
    first = first_flag(events, attacker_prefix, since)
    flagged_benign = flagged_keys(events, benign_keys, since)
    harmed = harmed_keys(events, benign_keys, since)
    n = len(set(benign_keys))
    attackers = {f.key_id for f in flags(events, prefix=attacker_prefix, since=since)}
    return DetectionSummary(
        flagged_at=harvest_index(first, harvest) if first is not None else None,
        flag_reason=first.reason if first is not None else None,
        flag_key=first.key_id if first is not None else None,
        flag_time=first.time if first is not None else None,
        benign_keys=n,
        benign_flagged_keys=len(flagged_benign),
        fpr=len(flagged_benign) / n if n else None,
        attacker_keys_flagged=len(attackers),
        benign_harmed_keys=len(harmed), harmed_rate=len(harmed) / n if n else None,
        benign_harms=harms(events, benign_keys, since),
    )
