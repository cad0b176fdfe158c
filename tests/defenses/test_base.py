"""The defense hook interface: stack building and errors, adjust, reset, the audit log."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from extractbench.defenses import (
    DEFENSES,
    AuditEvent,
    AuditLog,
    Defense,
    DefenseConfigError,
    DefenseStack,
    RequestContext,
)
from extractbench.types import SamplingParams

BUILTIN = ["antidistill", "detector", "hydra", "logprob-guard", "misinformation", "perturb",
           "rate-limit", "reasoning-guard", "watermark"]


def ctx(key: str = "k", index: int = 0, prompt: str = "What is 1 + 2?",
        **params: object) -> RequestContext:
    return RequestContext("openai", "/v1/chat/completions", key, index, "m", prompt,
                          SamplingParams(**params))  # type: ignore[arg-type]


def test_every_builtin_defense_is_registered_with_a_description() -> None:
    assert DEFENSES.names() == BUILTIN
    assert all(e.description for e in DEFENSES.entries())


def test_from_specs_builds_in_order_from_pairs_or_spec_objects() -> None:
    from extractbench.config.scenario import DefenseSpec

    stack = DefenseStack.from_specs([
        ("rate-limit", {"requests_per_minute": 60}),
        DefenseSpec(name="logprob-guard", params={"hide": True}),
    ])
    assert [d.name for d in stack.defenses] == ["rate-limit", "logprob-guard"]
    assert stack.find("logprob-guard") is stack.defenses[1]
    assert stack.find("watermark") is None


@pytest.mark.parametrize(("specs", "expected"), [
    ([("no-such", {})], "endpoints.ref.defenses.0.name: unknown defense 'no-such'"),
    ([("perturb", {"poison_fraction": 1.5})],
     "endpoints.ref.defenses.0.params.poison_fraction: must be a number in [0, 1], got 1.5"),
    ([("logprob-guard", {"ignore_logit_bias": False})],
     "endpoints.ref.defenses.0.params: logprob-guard: nothing to do"),
    ([("rate-limit", {"rmp": 3})],
     "endpoints.ref.defenses.0.params.rmp: unknown parameter (rate-limit takes: day_s, "),
    ([("logprob-guard", {"hide": "yes"})],
     "endpoints.ref.defenses.0.params.hide: expected true or false, got 'yes'"),
    ([("detector", {"action": "perturb"})],
     "endpoints.ref.defenses: detector: action 'perturb' needs a `perturb` defense"),
])
def test_from_specs_errors_are_one_line_naming_where(specs: list[tuple[str, dict[str, object]]],
                                                     expected: str) -> None:
    with pytest.raises(DefenseConfigError) as info:
        DefenseStack.from_specs(specs, where="endpoints.ref.defenses")
    msg = str(info.value)
    assert msg.startswith(expected)
    assert "\n" not in msg
    if "rmp" in str(specs):
        assert "rmp" in msg


def test_detector_handing_keys_to_perturb_is_accepted_with_a_flagged_perturb() -> None:
    stack = DefenseStack.from_specs([("detector", {"action": "perturb"}),
                                     ("perturb", {"poison_fraction": 0.5, "scope": "flagged"})])
    assert len(stack) == 2


class Cap(Defense):
    name = "test-cap"

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.resets = 0

    def adjust(self, ctx: RequestContext) -> SamplingParams:
        return replace(ctx.params, max_tokens=min(ctx.params.max_tokens, self.cap))

    def reset(self) -> None:
        self.resets += 1


def test_adjust_chains_in_stack_order_and_reset_reaches_every_defense(tmp_path: Path) -> None:
    a, b = Cap(10), Cap(4)
    stack = DefenseStack([a, b])
    out = stack.adjust(ctx(max_tokens=32))
    assert out.params.max_tokens == 4
    assert stack.adjust(ctx(max_tokens=3)).params.max_tokens == 3
    new = AuditLog(tmp_path / "cell.jsonl")
    stack.reset(new)
    assert (a.resets, b.resets) == (1, 1)
    assert stack.audit is new and a.audit is new


def test_sampling_defenses_are_named() -> None:
    stack = DefenseStack.from_specs([("watermark", {}), ("logprob-guard", {"hide": True})])
    assert stack.sampling_defenses() == ["watermark"]


def test_audit_log_roundtrips_jsonl_and_tracks_flags(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "a.jsonl"
    log = AuditLog(path)
    log.record(AuditEvent("attacker-0", 1.5, 7, "detector", "flag", {"test": "volume"}))
    log.record(AuditEvent("benign-0", 2.5, 1, "rate-limit", "reject", {"status": 429}))
    assert log.is_flagged("attacker-0") and not log.is_flagged("benign-0")
    with path.open("a") as f:
        f.write('{"entry_type": "audit_ev')  # a torn last line, as after a crash
    events = AuditLog.read(path)
    assert [(e.key_id, e.query_index, e.kind) for e in events] == [
        ("attacker-0", 7, "flag"), ("benign-0", 1, "reject")]
    assert events[0].detail == {"test": "volume"}
    first = json.loads(path.read_text().splitlines()[0])
    assert first["entry_type"] == "audit_event"
    log.forget_flags()
    assert not log.is_flagged("attacker-0")
    assert AuditLog.read(tmp_path / "missing.jsonl") == []


def test_reset_without_a_new_log_forgets_flags_but_keeps_events() -> None:
    stack = DefenseStack.from_specs([("perturb", {"poison_fraction": 1.0, "scope": "flagged"})])
    stack.audit.record(AuditEvent("attacker-0", 1.0, 0, "detector", "flag"))
    assert stack.audit.is_flagged("attacker-0")
    stack.reset()
    assert not stack.audit.is_flagged("attacker-0")
    assert len(stack.audit) == 1
