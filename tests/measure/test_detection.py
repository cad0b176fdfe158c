"""Detection metrics: flags from the audit log mapped to the attacker's query index, the
false-positive rate over benign keys, the pre-flag harvest; end to end through the oracle."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from extractbench.campaign.benign import run_benign
from extractbench.campaign.oracle import Oracle
from extractbench.config.budget import Budget
from extractbench.defenses import AuditEvent, AuditLog, DefenseStack
from extractbench.defenses.detector import Detector
from extractbench.endpoints.clients import Endpoint
from extractbench.logs.harvest import (
    Entry,
    ErrorEntry,
    HarvestLog,
    NoteEntry,
    RequestParams,
    RequestRecord,
    ResponseEntry,
    ResponseRecord,
    UsageRecord,
)
from extractbench.measure.detection import (
    before_flag,
    false_positive_rate,
    first_flag,
    flags,
    harvest_index,
    read_events,
    summarize,
)
from extractbench.reference.lm import TinyLM
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.tasks import prompt_hash

T0 = 1_700_000_000.0


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def response(index: int, key: str, prompt: str, t: float, latency: float = 0.1) -> ResponseEntry:
    return ResponseEntry(
        time=iso(t), index=index, key_id=key,
        request=RequestRecord(prompt=prompt, prompt_hash=prompt_hash(prompt), api="openai",
                              model="m", params=RequestParams(temperature=0, max_tokens=4)),
        response=ResponseRecord(text="5", finish_reason="stop"),
        usage=UsageRecord(input_tokens=3, output_tokens=1), tokens_estimated=False,
        cost_usd=0.0, latency_s=latency, attempt=1)


def error(index: int, key: str, prompt: str, t: float, attempt: int = 1) -> ErrorEntry:
    return ErrorEntry(time=iso(t), index=index, key_id=key, prompt_hash=prompt_hash(prompt),
                      prompt=prompt, error_type="permission", status=403, message="no",
                      attempt=attempt, charged=attempt > 0)


def flag(key: str, t: float, index: int, prompt: str | None = None,
         test: str = "volume") -> AuditEvent:
    detail: dict[str, object] = {"test": test}
    if prompt is not None:
        detail["prompt_hash"] = prompt_hash(prompt)
    return AuditEvent(key, t, index, "detector", "flag", detail)


def test_flags_filter_and_order() -> None:
    events = [
        flag("attacker-1", T0 + 5, 3),
        AuditEvent("attacker-0", T0 + 1, 0, "rate-limit", "reject", {}),
        flag("attacker-0", T0 + 2, 9, test="duplicate"),
        flag("benign-0", T0 + 1, 4),
    ]
    assert [f.key_id for f in flags(events)] == ["benign-0", "attacker-0", "attacker-1"]
    first = first_flag(events)
    assert first is not None and first.key_id == "attacker-0"
    assert first.reason == "detector:duplicate" and first.endpoint_index == 9
    assert first_flag(events, since=T0 + 3) is not None
    assert first_flag(events, since=T0 + 6) is None
    assert false_positive_rate(events, ["benign-0", "benign-1", "benign-2", "benign-3"]) == 0.25
    assert false_positive_rate(events, []) is None


def test_harvest_index_by_prompt_hash_and_time() -> None:
    h: list[Entry] = [response(i, "attacker-0", f"q{i % 3}", T0 + i) for i in range(9)]
    # q1 was sent at indices 1, 4, 7; the flag came while index 4 was in flight
    assert harvest_index(flag("attacker-0", T0 + 3.95, 4, "q1"), h) == 4
    # without a prompt hash: the first of the key's queries logged at or after the flag
    assert harvest_index(flag("attacker-0", T0 + 6.5, 2), h) == 7
    assert harvest_index(flag("attacker-0", T0 + 60, 2), h) == 9  # after the last query
    assert harvest_index(flag("attacker-0", T0, 0, "q1"), []) is None
    blocked = [*h, error(9, "attacker-0", "q9", T0 + 9.1)]  # the flagging query got a 403
    assert harvest_index(flag("attacker-0", T0 + 9.05, 9, "q9"), blocked) == 9
    unsent = [*h, error(9, "attacker-0", "q9", T0 + 9.1, attempt=0)]
    assert harvest_index(flag("attacker-0", T0 + 9.05, 9, "q9"), unsent) == 9  # by time


def test_before_flag_and_summary() -> None:
    h: list[Entry] = [response(i, f"attacker-{i % 2}", f"q{i}", T0 + i) for i in range(10)]
    note = NoteEntry(text="train_prompt", data={"index": 7})
    kept = before_flag([*h, note], 4)
    assert [e.index for e in kept if isinstance(e, ResponseEntry)] == [0, 1, 2, 3]
    assert note in kept  # attacks' notes travel with the pre-flag harvest
    assert len(before_flag(h, None)) == 10
    events = [flag("attacker-1", T0 + 7, 3, "q7"), flag("benign-1", T0 + 2, 5)]
    s = summarize(events, h, ["benign-0", "benign-1"])
    assert (s.flagged_at, s.flag_reason, s.flag_key) == (7, "detector:volume", "attacker-1")
    assert (s.benign_keys, s.benign_flagged_keys, s.fpr) == (2, 1, 0.5)
    none = summarize([], h, ["benign-0"])
    assert none.flagged_at is None and none.flag_reason is None and none.fpr == 0.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread


def test_end_to_end_flag_maps_to_the_oracle_index(tiny_lm: TinyLM, tmp_path: Path) -> None:
    attackers = [("attacker-0", "fake-e2e-a0-1f2e3d4c"), ("attacker-1", "fake-e2e-a1-5b6a7988")]
    benign = [("benign-0", "fake-e2e-b0-0a1b2c3d"), ("benign-1", "fake-e2e-b1-4e5f6a7b")]
    keys = {secret: kid for kid, secret in [*attackers, *benign]}
    audit_path = tmp_path / "audit" / "cell.jsonl"
    stack = DefenseStack([Detector(tests=["volume"], volume_total=5, action="block")],
                         AuditLog(audit_path))
    harvest_path = tmp_path / "harvest.jsonl"

    async def go(ep: Endpoint) -> None:
        oracle = Oracle(ep, attackers, Budget(queries=20), HarvestLog(harvest_path),
                        concurrency=1)
        try:
            for i in range(20):
                await oracle.query(f"What is {i} + 1?", max_tokens=3)
        finally:
            await oracle.aclose()
        stop = asyncio.Event()
        stop.set()
        await run_benign(ep, benign[:1], ["What is 2 + 2?"], max_tokens=3, pacing_s=0.01,
                         stop=stop, seed=0, min_per_key=3)
        await run_benign(ep, benign[1:], ["What is 2 + 2?"], max_tokens=3, pacing_s=0.01,
                         stop=stop, seed=0, min_per_key=7)

    app = create_app({"tiny": ServedModel("tiny", tiny_lm)}, keys, stack)
    with RunningServer(app) as srv:
        asyncio.run(go(Endpoint(api="openai", base_url=srv.openai_base_url, model="tiny")))

    harvest = HarvestLog.read(harvest_path)
    summary = summarize(read_events(audit_path), harvest, [k for k, _ in benign])
    # round robin: attacker-0 sends oracle queries 0, 2, 4, 6, 8; its 6th (query 10) is flagged
    assert summary.flagged_at == 10
    assert summary.flag_key == "attacker-0" and summary.flag_reason == "detector:volume"
    assert summary.attacker_keys_flagged == 2  # attacker-1 alone carried on, and was flagged
    assert (summary.benign_flagged_keys, summary.fpr) == (1, 0.5)
    pre = before_flag(harvest, summary.flagged_at)
    assert [e.index for e in pre if isinstance(e, ResponseEntry)] == list(range(10))
