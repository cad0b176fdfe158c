"""The harvest log: append-only typed JSONL that survives crashes and resumes."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractbench.logs.harvest import (
    ErrorEntry,
    HarvestLog,
    NoteEntry,
    RequestParams,
    RequestRecord,
    ResponseEntry,
    ResponseRecord,
    SegmentEntry,
    SentEntry,
    TokenLogprob,
    TopLogprob,
    UsageRecord,
    in_flight,
    pairs,
    spent_in,
)
from extractbench.tasks.base import prompt_hash


def response(index: int, prompt: str = "2+2?") -> ResponseEntry:
    return ResponseEntry(
        index=index,
        key_id="attacker-0",
        request=RequestRecord(
            prompt=prompt,
            prompt_hash=prompt_hash(prompt),
            api="openai",
            model="m",
            params=RequestParams(temperature=0.0, max_tokens=8, logprobs=True, top_logprobs=1),
        ),
        response=ResponseRecord(
            text="4",
            finish_reason="stop",
            logprobs=[
                TokenLogprob(token="4", logprob=-0.1, top=[TopLogprob(token="5", logprob=-3)])
            ],
        ),
        usage=UsageRecord(input_tokens=10, output_tokens=1),
        tokens_estimated=False,
        cost_usd=0.5,
        latency_s=0.01,
        attempt=1,
    )


def error(index: int, charged: bool = True) -> ErrorEntry:
    return ErrorEntry(
        index=index,
        key_id="attacker-0",
        prompt_hash=prompt_hash("x"),
        prompt="x",
        error_type="rate_limit",
        status=429,
        message="slow down",
        retry_after=1.0,
        attempt=1,
        wait_s=1.0,
        charged=charged,
    )


def test_two_sessions_are_two_segments(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "h.jsonl"
    log = HarvestLog(path)
    log.start_segment(run_id="r1", cell_id="c1", attack="random")
    log.append(response(0))
    log.append(error(1))
    log.note("switching phase", phase=2)
    log.close()
    before = path.read_bytes()

    log2 = HarvestLog(path)
    log2.append(response(2))  # no explicit segment: a bare one is written first
    log2.close()
    assert path.read_bytes().startswith(before)  # nothing rewritten

    entries = HarvestLog.read(path)
    assert [e.entry_type for e in entries] == [
        "segment", "response", "error", "note", "segment", "response"
    ]
    seg = entries[0]
    assert isinstance(seg, SegmentEntry) and (seg.run_id, seg.attack) == ("r1", "random")
    assert isinstance(entries[3], NoteEntry) and entries[3].data == {"phase": 2}
    assert entries[1] == response(0).model_copy(update={"time": entries[1].time})


def test_lines_are_on_disk_before_close(tmp_path: Path) -> None:
    log = HarvestLog(tmp_path / "h.jsonl")
    log.append(response(0))
    assert len(HarvestLog.read(tmp_path / "h.jsonl")) == 2
    log.close()


def test_pairs_exclude_errors_and_notes(tmp_path: Path) -> None:
    log = HarvestLog(tmp_path / "h.jsonl")
    for i in range(3):
        log.append(response(2 * i, prompt=f"p{i}"))
        log.append(error(2 * i + 1))
    log.note("n")
    log.close()
    got = pairs(HarvestLog.read(tmp_path / "h.jsonl"))
    assert [p.request.prompt for p in got] == ["p0", "p1", "p2"]
    assert all(isinstance(p, ResponseEntry) for p in got)


def test_truncated_last_line_is_tolerated_and_resume_continues(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    log = HarvestLog(path)
    log.append(response(0))
    log.close()
    with path.open("a", encoding="utf-8") as f:  # a crash in the middle of a line
        f.write(response(1).model_dump_json()[:40])
    assert [e.entry_type for e in HarvestLog.read(path)] == ["segment", "response"]

    log = HarvestLog(path)
    log.append(response(2))
    log.close()
    entries = HarvestLog.read(path)
    assert [e.entry_type for e in entries] == ["segment", "response", "segment", "response"]


def test_damage_elsewhere_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    log = HarvestLog(path)
    log.append(response(0))
    log.close()
    with path.open("a", encoding="utf-8") as f:
        f.write('{"entry_type": "bogus"}\n')
        f.write(response(1).model_dump_json() + "\n")
    with pytest.raises(ValueError, match=r"h\.jsonl:3: not a harvest entry"):
        HarvestLog.read(path)


def test_missing_file_reads_empty(tmp_path: Path) -> None:
    assert HarvestLog.read(tmp_path / "nope.jsonl") == []


def test_spent_in_counts_charged_queries(tmp_path: Path) -> None:
    entries = [SegmentEntry(), response(0), error(1), error(2, charged=False), response(3)]
    spent = spent_in(entries)
    assert (spent.queries, spent.input_tokens, spent.output_tokens, spent.usd) == (3, 20, 2, 1.0)


def sent(index: int, attempt: int = 1) -> SentEntry:
    return SentEntry(index=index, attempt=attempt, key_id="attacker-0",
                     prompt_hash=prompt_hash("x"), prompt="x",
                     usage=UsageRecord(input_tokens=20, output_tokens=8), cost_usd=0.25)


def test_a_sent_attempt_is_in_flight_until_its_outcome_is_logged(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    log = HarvestLog(path)
    for entry in (sent(0), response(0), sent(1), error(1), sent(1, attempt=2), sent(2)):
        log.append(entry, sync=False)
    log.close()
    entries = HarvestLog.read(path)
    assert [(e.index, e.attempt) for e in in_flight(entries)] == [(1, 2), (2, 1)]
    assert [p.index for p in pairs(entries)] == [0]  # a sent line is never a training pair
    assert spent_in(entries) == spent_in([response(0), error(1)])  # nor a charge by itself
