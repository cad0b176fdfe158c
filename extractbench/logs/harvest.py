"""The harvest log: every request an attack made and what came back, append-only JSONL.

Each line is one typed entry with an ``entry_type``:

- ``segment``: the start of a write session (a resume appends a new segment, never rewrites);
- ``response``: a query that got an answer (the only kind that becomes a training pair);
- ``error``: a query attempt that failed, or a query that was never sent (budget, dead key);
- ``sent``: an attempt about to be sent, with its worst case; the ``response`` or ``error``
  with the same index and attempt resolves it. One left unresolved was in flight when the
  process died: the endpoint may have served and billed it, so the next session charges it at
  its worst case (an ``interrupted`` error, see :func:`in_flight`);
- ``note``: free-form notes from the attack.

Every line is flushed and fsynced as it is written (``sent`` lines are flushed only: they
outlive the process, not the machine), so a crash loses at most the line being written;
:meth:`HarvestLog.read` tolerates such a torn line.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from extractbench.config.budget import Spent

__all__ = [
    "Entry",
    "ErrorEntry",
    "ErrorType",
    "HarvestLog",
    "NoteEntry",
    "RequestParams",
    "RequestRecord",
    "ResponseEntry",
    "ResponseRecord",
    "SegmentEntry",
    "SentEntry",
    "TokenLogprob",
    "TopLogprob",
    "UsageRecord",
    "in_flight",
    "now_iso",
    "pairs",
    "spent_in",
]

HARVEST_VERSION = 1

ErrorType = Literal[
    "auth",  # 401: the key is wrong
    "permission",  # 403: the key may not do this (or was banned)
    "quota",  # 402 / insufficient_quota: out of credit
    "rate_limit",  # 429
    "bad_request",  # other 4xx
    "not_found",  # 404: wrong base_url or model
    "server",  # 5xx (and 409, which vendors use for transient conflicts)
    "connection",  # the connection failed (charged at the worst case if the request was sent)
    "timeout",  # no answer in time (or 408)
    "invalid_response",  # an answer the SDK could not read
    "refused",  # the endpoint answered with a content refusal
    "budget",  # not sent: the budget cannot cover the query's worst case
    "interrupted",  # in flight when the process died: charged at its worst case on resume
    "heldout",  # not sent: the prompt asks about held-out content
]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopLogprob(_Model):
    """One alternative at a position, as the endpoint reported it."""

    token: str
    logprob: float


class TokenLogprob(_Model):
    """A sampled token with its log-probability and the endpoint's top alternatives."""

    token: str
    logprob: float
    top: list[TopLogprob] = Field(default_factory=list)


class SegmentEntry(_Model):
    """Start of one write session on the log."""

    entry_type: Literal["segment"] = "segment"
    version: int = HARVEST_VERSION
    time: str = Field(default_factory=now_iso)
    pid: int = Field(default_factory=os.getpid)
    run_id: str | None = None
    cell_id: str | None = None
    attack: str | None = None
    api: str | None = Field(default=None, description="'openai' or 'anthropic'")
    base_url: str | None = None
    model: str | None = None


class RequestParams(_Model):
    """Generation settings of a request (everything that changes the answer)."""

    temperature: float
    max_tokens: int
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    logit_bias: dict[str, float] | None = None


class RequestRecord(_Model):
    prompt: str
    prompt_hash: str = Field(description="sha256 of the stripped prompt, first 24 hex digits")
    api: str
    model: str
    params: RequestParams


class ResponseRecord(_Model):
    text: str
    finish_reason: str | None
    logprobs: list[TokenLogprob] | None = Field(
        default=None, description="per output token; null when the endpoint returned none"
    )


class UsageRecord(_Model):
    input_tokens: int
    output_tokens: int


class ResponseEntry(_Model):
    """A query that got an answer: one training pair."""

    entry_type: Literal["response"] = "response"
    time: str = Field(default_factory=now_iso)
    index: int = Field(description="the oracle's query index (one per query call)")
    key_id: str
    request: RequestRecord
    response: ResponseRecord
    usage: UsageRecord
    tokens_estimated: bool = Field(
        description="true when the endpoint reported no usage and tiktoken estimated it"
    )
    cost_usd: float
    latency_s: float
    attempt: int = Field(description="1 for a first-try answer; more after retries")
    sim_s: float | None = Field(default=None, description="simulated seconds since the "
                                "campaign began when it was sent (a simulated clock only)")


class ErrorEntry(_Model):
    """A failed attempt, or a query that was not sent. Never a training pair."""

    entry_type: Literal["error"] = "error"
    time: str = Field(default_factory=now_iso)
    index: int
    key_id: str | None
    prompt_hash: str
    prompt: str
    error_type: ErrorType
    status: int | None = Field(default=None, description="HTTP status, when there was one")
    message: str = Field(description="what the endpoint said; API keys are scrubbed")
    retry_after: float | None = Field(default=None, description="seconds the endpoint asked for")
    attempt: int = Field(description="attempt number; 0 when the query was not sent")
    wait_s: float | None = Field(
        default=None, description="seconds waited before the retry; null when none followed"
    )
    charged: bool = Field(description="true when the attempt reached the endpoint (one query)")
    usage: UsageRecord | None = Field(
        default=None, description="tokens charged, for a refusal that came with usage"
    )
    cost_usd: float = 0.0
    sim_s: float | None = Field(default=None, description="simulated seconds since the "
                                "campaign began when it was sent (a simulated clock only)")


class SentEntry(_Model):
    """An attempt about to be sent, with the worst case it is charged if no outcome follows."""

    entry_type: Literal["sent"] = "sent"
    time: str = Field(default_factory=now_iso)
    index: int
    attempt: int
    key_id: str
    prompt_hash: str
    prompt: str
    usage: UsageRecord = Field(description="the attempt's worst case: what it is charged when "
                               "it never got an outcome")
    cost_usd: float = 0.0


class NoteEntry(_Model):
    """A free-form note from the attack (phase changes, decisions, parameters)."""

    entry_type: Literal["note"] = "note"
    time: str = Field(default_factory=now_iso)
    text: str
    data: dict[str, JsonValue] = Field(default_factory=dict)


Entry = Annotated[
    SegmentEntry | ResponseEntry | ErrorEntry | SentEntry | NoteEntry,
    Field(discriminator="entry_type"),
]
_ENTRY: TypeAdapter[Entry] = TypeAdapter(Entry)


class HarvestLog:
    """An append-only JSONL log. Thread-safe; each line is fsynced as it is written."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fh: IO[str] | None = None

    def start_segment(self, **fields: str | None) -> SegmentEntry:
        """Begin a write session (fields of :class:`SegmentEntry`: run_id, cell_id, attack,
        api, base_url, model) and return its entry."""
        segment = SegmentEntry.model_validate(fields)
        with self._lock:
            self._write(segment, opening=True)
        return segment

    def append(self, entry: Entry, *, sync: bool = True) -> None:
        """Write one entry; starts a bare segment first if this session has none. Without
        ``sync`` the line is flushed to the OS but not fsynced (it survives the process's
        death, not a power cut)."""
        with self._lock:
            if self._fh is None:
                self._write(SegmentEntry(), opening=True)
            self._write(entry, opening=False, sync=sync)

    def note(self, text: str, **data: JsonValue) -> None:
        self.append(NoteEntry(text=text, data=data))

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def entries(self) -> list[Entry]:
        return self.read(self.path)

    def _write(self, entry: Entry, *, opening: bool, sync: bool = True) -> None:
        if opening:
            if self._fh is not None:
                self._fh.close()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torn = _ends_torn(self.path)
            self._fh = self.path.open("a", encoding="utf-8")
            if torn:  # terminate a line a crash cut short, so ours starts on a fresh line
                self._fh.write("\n")
        assert self._fh is not None
        self._fh.write(entry.model_dump_json() + "\n")
        self._fh.flush()
        if sync or opening:
            os.fsync(self._fh.fileno())

    @staticmethod
    def read(path: str | Path) -> list[Entry]:
        """All entries of a log. A line torn by a crash (the last line, or the line before a
        new segment) is skipped; any other bad line is an error naming the file and line."""
        path = Path(path)
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").split("\n")
        entries: list[Entry] = []
        torn: tuple[int, str] | None = None  # a bad line, forgiven only at a crash boundary
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = _ENTRY.validate_json(line)
            except ValidationError as e:
                if torn is not None:
                    raise _bad_line(path, *torn) from None
                torn = (lineno, str(e.errors()[0]["msg"]))
                continue
            if torn is not None and not isinstance(entry, SegmentEntry):
                raise _bad_line(path, *torn) from None
            torn = None
            entries.append(entry)
        return entries


def pairs(entries: Iterable[Entry]) -> list[ResponseEntry]:
    """The training pairs of a harvest: responses only, never errors or refusals."""
    return [e for e in entries if isinstance(e, ResponseEntry)]


def spent_in(entries: Iterable[Entry]) -> Spent:
    """What the logged queries cost: each response and each charged error is one query."""
    queries = input_tokens = output_tokens = 0
    usd = 0.0
    for e in entries:
        if isinstance(e, ResponseEntry):
            queries += 1
            input_tokens += e.usage.input_tokens
            output_tokens += e.usage.output_tokens
            usd += e.cost_usd
        elif isinstance(e, ErrorEntry) and e.charged:
            queries += 1
            if e.usage is not None:
                input_tokens += e.usage.input_tokens
                output_tokens += e.usage.output_tokens
            usd += e.cost_usd
    return Spent(queries, input_tokens, output_tokens, usd)


def in_flight(entries: Iterable[Entry]) -> list[SentEntry]:
    """The ``sent`` attempts no ``response`` or ``error`` resolved: in flight when the process
    that sent them died."""
    open_: dict[tuple[int, int], SentEntry] = {}
    for e in entries:
        if isinstance(e, SentEntry):
            open_[(e.index, e.attempt)] = e
        elif isinstance(e, ResponseEntry | ErrorEntry):
            open_.pop((e.index, e.attempt), None)
    return list(open_.values())


def _ends_torn(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def _bad_line(path: Path, lineno: int, why: str) -> ValueError:
    return ValueError(
        f"{path}:{lineno}: not a harvest entry: {why} (the log is damaged; "
        "move it aside to start a fresh harvest)"
    )
