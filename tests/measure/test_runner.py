"""End to end: a tiny scenario against the real reference endpoint with the shipped teacher,
a real campaign through the SDK, a real (tiny) student, real scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extractbench.config.scenario import load_scenario, scenario_hash
from extractbench.logs.harvest import HarvestLog, pairs
from extractbench.measure.runner import RunError, Runner, RunResult, run_scenario
from extractbench.reference.teachers import model_path
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.tasks import TASKS, prompt_hash

pytestmark = pytest.mark.skipif(not model_path("arith-ref").exists(),
                                reason="reference weights missing (extractbench train-reference)")

TINY = """
version: 1
name: tiny
endpoints:
  ref: {kind: reference, model: arith-ref}
tasks:
  arith: {family: arithmetic, params: {digits: 2, ops: ["+"]}, attack_pool: 80, heldout: 40,
          benign: 10}
attacks:
  rp: {name: random-pool}
budgets: [{queries: 5}, {queries: 30}]
students:
  s: {name: tinylm, params: {d_model: 32, n_layers: 1, steps: 10}}
seeds: [3]
gates:
  - {metric: teacher_score, min: 0.9}
"""


def _scenario(tmp_path: Path, text: str = TINY) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(text)
    return p


def _metrics(run_dir: Path) -> list[dict[str, object]]:
    keep = ("cell_id", "teacher_score", "base_score", "student_score", "transfer", "fidelity",
            "queries", "input_tokens", "output_tokens", "items", "harvest_pairs")
    rows = [json.loads(line) for line in (run_dir / "records.jsonl").read_text().splitlines()]
    return [{k: r[k] for k in keep} for r in rows]


def test_run_end_to_end_and_reproducible(tmp_path: Path) -> None:
    path = _scenario(tmp_path)
    sc = load_scenario(path)
    first = run_scenario(sc, path, tmp_path / "results", run_id="a", progress=False)
    assert [r.status for r in first.records] == ["ok", "ok"], [r.error for r in first.records]
    assert not first.gate_failures
    for r in first.records:
        assert r.teacher_score is not None and r.teacher_score >= 0.9
        assert r.queries <= r.budget["queries"]
        assert r.harvest_pairs == r.queries  # the undefended endpoint answers every query
        assert r.transfer is not None and r.transfer.low <= r.transfer.value <= r.transfer.high
        assert r.base_kind in ("constant", "public", "nothing")
        assert r.base_score is not None and r.items is not None
        assert r.base_score == sum(r.items.base) / r.n_heldout
        assert r.provenance.scenario_hash and r.provenance.git_sha
        assert r.provenance.package_versions["torch"].startswith("2.")

    # held-out prompts were never sent by the attack (checked by hash on the harvest log)
    task = TASKS.get("arithmetic")(3, {"attack_pool": 80, "heldout": 40, "benign": 10},
                                   digits=2, ops=["+"])
    heldout = {prompt_hash(i.prompt) for i in task.split("heldout")}
    for r in first.records:
        assert r.harvest_path is not None
        sent = {e.request.prompt_hash for e in pairs(HarvestLog.read(first.run_dir /
                                                                     r.harvest_path))}
        assert sent and not sent & heldout

    second = run_scenario(sc, path, tmp_path / "results", run_id="b", progress=False)
    assert _metrics(first.run_dir) == _metrics(second.run_dir)


def test_a_streaming_attacker_buys_the_same_answers(tmp_path: Path) -> None:
    plain = _scenario(tmp_path)
    streamed = tmp_path / "stream.yaml"
    streamed.write_text(TINY.replace("model: arith-ref}", "model: arith-ref, stream: true}"))
    a, b = load_scenario(plain), load_scenario(streamed)
    assert b.endpoints["ref"].stream and not a.endpoints["ref"].stream
    assert scenario_hash(a) == scenario_hash(load_scenario(_scenario(
        tmp_path, TINY.replace("model: arith-ref}", "model: arith-ref, stream: false}"))))
    assert scenario_hash(a) != scenario_hash(b)
    ra = run_scenario(a, plain, tmp_path / "results", run_id="plain", only="q30",
                      progress=False)
    rb = run_scenario(b, streamed, tmp_path / "results", run_id="stream", only="q30",
                      progress=False)

    def bought(result: RunResult) -> list[tuple[int, str, str, int, int]]:
        [r] = result.records
        assert r.harvest_path is not None
        return sorted((e.index, e.request.prompt, e.response.text, e.usage.input_tokens,
                       e.usage.output_tokens)
                      for e in pairs(HarvestLog.read(result.run_dir / r.harvest_path)))

    assert len(bought(ra)) == 30 and bought(ra) == bought(rb)  # usage included
    assert _metrics(ra.run_dir) == _metrics(rb.run_dir)


def test_gate_failure_is_reported(tmp_path: Path) -> None:
    path = _scenario(tmp_path, TINY.replace("teacher_score, min: 0.9",
                                            "student_score, min: 0.99"))
    result = run_scenario(load_scenario(path), path, tmp_path / "r", only="q5",
                          progress=False)
    assert len(result.records) == 1
    assert result.gate_failures and "student_score" in result.gate_failures[0]


REMOTE = TINY.replace(
    "  ref: {kind: reference, model: arith-ref}",
    "  vendor: {kind: remote, api: openai, base_url: 'BASE', model: arith-ref, "
    "api_key_env: EB_TEST_VENDOR_KEY}",
)


def test_wrong_api_key_is_one_clear_error(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from extractbench.reference.teachers import load_reference

    app = create_app({"arith-ref": ServedModel("arith-ref", load_reference("arith-ref"))},
                     {"fake-right-key-123": "user"})
    with RunningServer(app) as server:
        path = _scenario(tmp_path, REMOTE.replace("BASE", server.openai_base_url))
        monkeypatch.setenv("EB_TEST_VENDOR_KEY", "fake-wrong-key-456")
        with pytest.raises(RunError) as err:
            run_scenario(load_scenario(path), path, tmp_path / "r", progress=False)
    msg = str(err.value)
    assert "vendor" in msg and "API key" in msg and "\n" not in msg
    assert "fake-wrong-key-456" not in msg


def test_unreachable_endpoint_is_one_clear_error(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = _scenario(tmp_path, REMOTE.replace("BASE", "http://127.0.0.1:9/v1"))
    monkeypatch.setenv("EB_TEST_VENDOR_KEY", "fake-x")
    with pytest.raises(RunError, match="unreachable"):
        run_scenario(load_scenario(path), path, tmp_path / "r", progress=False)


def test_missing_key_skips_remote_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _scenario(tmp_path, REMOTE.replace("BASE", "http://127.0.0.1:9/v1"))
    monkeypatch.delenv("EB_TEST_VENDOR_KEY", raising=False)
    sc = load_scenario(path)
    with Runner(sc, path, tmp_path / "r") as runner:
        records = [runner.run_cell(c) for c in runner.cells()]
    assert {r.status for r in records} == {"skipped"}
    assert all("EB_TEST_VENDOR_KEY" in (r.error or "") for r in records)


DEFENDED = TINY.replace(
    "  ref: {kind: reference, model: arith-ref}",
    "  ref: {kind: reference, model: arith-ref}\n"
    "  guarded:\n"
    "    kind: reference\n"
    "    model: arith-ref\n"
    "    defenses:\n"
    "      - {name: detector, params: {action: block, min_queries: 10, tests: [volume],\n"
    "                                   volume_max: 15, volume_window_s: 60}}",
).replace("budgets: [{queries: 5}, {queries: 30}]", "budgets: [{queries: 40}]").replace(
    "attack_pool: 80", "attack_pool: 200")


def test_defended_profile_measures_detection_and_utility(tmp_path: Path) -> None:
    path = _scenario(tmp_path, DEFENDED)
    result = run_scenario(load_scenario(path), path, tmp_path / "r", progress=False)
    by_endpoint = {r.endpoint: r for r in result.records}
    open_, guarded = by_endpoint["ref"], by_endpoint["guarded"]
    assert open_.flagged_at is None and open_.utility == 1.0
    assert open_.benign_queries == 0  # no benign traffic needed without a defense
    # the volume detector flags the attacker's key and blocks it: fewer queries answered
    assert guarded.flagged_at is not None and guarded.flagged_at < 40
    assert guarded.flag_reason and "volume" in guarded.flag_reason
    assert guarded.harvest_pairs < open_.harvest_pairs
    assert guarded.transfer_at_flag is not None
    # benign users sent traffic alongside and were scored for false positives
    assert guarded.benign_queries >= 4 * 5 and guarded.benign_keys == 4
    assert guarded.fpr is not None and 0.0 <= guarded.fpr <= 1.0
    assert guarded.utility is not None and guarded.items is not None
    assert guarded.items.defended is not None and len(guarded.items.defended) == 40


WATERMARKED = TINY.replace(
    "  ref: {kind: reference, model: arith-ref}",
    "  ref: {kind: reference, model: arith-ref}\n"
    "  wm:\n    kind: reference\n    model: arith-ref\n"
    "    defenses: [{name: watermark, params: {delta: 20}}]",
).replace("budgets: [{queries: 5}, {queries: 30}]", "budgets: [{queries: 120}]").replace(
    "attack_pool: 80", "attack_pool: 200").replace(
    "steps: 10", "steps: 150")


def test_watermark_profile_reports_student_and_control_statistics(tmp_path: Path) -> None:
    path = _scenario(tmp_path, WATERMARKED)
    result = run_scenario(load_scenario(path), path, tmp_path / "r", progress=False)
    by_endpoint = {r.endpoint: r for r in result.records}
    assert all(r.status == "ok" for r in result.records), [r.error for r in result.records]
    plain, marked = by_endpoint["ref"], by_endpoint["wm"]
    # no watermark in the profile: no statistic, rather than a meaningless one
    assert plain.watermark_z is None and plain.watermark_control_z is None
    assert marked.watermark_z is not None and marked.watermark_control_z is not None
    assert marked.watermark_p is not None and 0.0 <= marked.watermark_p <= 1.0
    # a strong watermark survives distillation: the student trained on watermarked answers
    # carries more green tokens than the control trained on the clean teacher's answers
    assert marked.watermark_z > marked.watermark_control_z + 2.0


PROXIED = TINY.replace(
    "  ref: {kind: reference, model: arith-ref}",
    "  vendor: {kind: remote, api: openai, base_url: 'BASE', model: arith-ref,\n"
    "           api_key_env: EB_TEST_VENDOR_KEY}\n"
    "  vendor-guarded:\n"
    "    kind: remote\n    api: openai\n    base_url: 'BASE'\n    model: arith-ref\n"
    "    api_key_env: EB_TEST_VENDOR_KEY\n"
    "    defenses:\n"
    "      - {name: detector, params: {action: block, min_queries: 10, tests: [volume],\n"
    "                                   volume_max: 15, volume_window_s: 60}}",
).replace("budgets: [{queries: 5}, {queries: 30}]", "budgets: [{queries: 40}]").replace(
    "attack_pool: 80", "attack_pool: 200")


def test_defenses_on_a_remote_endpoint_run_in_the_proxy(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from extractbench.reference.teachers import load_reference

    upstream_key = "upstream-secret-for-test-0042"
    app = create_app({"arith-ref": ServedModel("arith-ref", load_reference("arith-ref"))},
                     {upstream_key: "bench"})
    with RunningServer(app) as server:
        path = _scenario(tmp_path, PROXIED.replace("BASE", server.openai_base_url))
        monkeypatch.setenv("EB_TEST_VENDOR_KEY", upstream_key)
        result = run_scenario(load_scenario(path), path, tmp_path / "r", progress=False)
    by_endpoint = {r.endpoint: r for r in result.records}
    assert all(r.status == "ok" for r in result.records), [r.error for r in result.records]
    direct, guarded = by_endpoint["vendor"], by_endpoint["vendor-guarded"]
    assert direct.flagged_at is None and direct.harvest_pairs == 40
    # the proxy's detector flagged and blocked the attacker key in front of the "vendor"
    assert guarded.flagged_at is not None and guarded.flagged_at < 40
    assert guarded.harvest_pairs < direct.harvest_pairs
    assert guarded.benign_keys == 4 and guarded.fpr is not None
    assert guarded.utility is not None and guarded.teacher_score == direct.teacher_score
    assert (result.run_dir / "audit").is_dir()
    # the upstream key is in no file the run wrote
    for f in result.run_dir.rglob("*"):
        if f.is_file():
            assert upstream_key not in f.read_text(errors="replace"), f


def test_sampling_time_defense_on_a_remote_endpoint_is_one_clear_error(tmp_path: Path) -> None:
    from extractbench.config.scenario import ScenarioError

    text = PROXIED.replace("BASE", "http://127.0.0.1:9/v1").replace(
        "- {name: detector, params: {action: block, min_queries: 10, tests: [volume],\n"
        "                                   volume_max: 15, volume_window_s: 60}}",
        "- {name: watermark}")
    with pytest.raises(ScenarioError) as err:
        load_scenario(_scenario(tmp_path, text))
    msg = str(err.value)
    assert "endpoints.vendor-guarded.defenses.0.name" in msg and "sampling time" in msg


def test_heavy_benign_users_are_counted_as_false_positives(tmp_path: Path) -> None:
    # the same volume detector as DEFENDED; the legitimate users now send 20 queries each,
    # past its volume_max of 15 a minute: they are flagged too, and the FPR says so
    text = DEFENDED.replace("seeds: [3]", "seeds: [3]\nbenign_traffic: {users: 2, pacing_s: "
                            "0.01, min_queries_per_user: 20}")
    path = _scenario(tmp_path, text)
    result = run_scenario(load_scenario(path), path, tmp_path / "r", progress=False,
                          only="guarded")
    (guarded,) = result.records
    assert guarded.status == "ok", guarded.error
    assert guarded.benign_keys == 2 and guarded.benign_queries >= 2 * 20
    assert guarded.benign_flagged_keys == 2 and guarded.fpr == 1.0
    # the flagged users were blocked: what they received scores below the teacher, while
    # utility (light users' view) does not see it
    assert guarded.benign_score is not None and guarded.teacher_score is not None
    assert guarded.benign_score < guarded.teacher_score - 0.2


QUOTA = DEFENDED.replace(
    "      - {name: detector, params: {action: block, min_queries: 10, tests: [volume],\n"
    "                                   volume_max: 15, volume_window_s: 60}}",
    "      - {name: rate-limit, params: {requests_per_day: 12}}")


def test_a_daily_quota_is_waited_out_on_the_simulated_clock(tmp_path: Path) -> None:
    # 40 queries at 12 a day: the patient attacker waits for the quota to reset three times
    path = _scenario(tmp_path, QUOTA)
    (guarded,) = run_scenario(load_scenario(path), path, tmp_path / "r", progress=False,
                              only="guarded").records
    assert guarded.status == "ok", guarded.error
    assert guarded.clock == "simulated" and guarded.sim_s is not None
    assert guarded.harvest_pairs == 40 - 3  # three refused attempts were charged queries
    assert 3 * 86400 < guarded.sim_s < 4 * 86400
    assert guarded.errors_by_type["quota"] == 3


@pytest.mark.parametrize("clock", ["{mode: wall}", "{max_wait_s: 3600}"])
def test_a_daily_quota_stops_the_attack_when_it_is_not_waited_out(tmp_path: Path,
                                                                 clock: str) -> None:
    # on the wall clock nobody waits a day; on the simulated one, not past max_wait_s
    path = _scenario(tmp_path, QUOTA.replace("gates:", f"clock: {clock}\ngates:"))
    (guarded,) = run_scenario(load_scenario(path), path, tmp_path / "r", progress=False,
                              only="guarded").records
    assert guarded.status == "ok", guarded.error
    assert guarded.harvest_pairs == 12
    assert guarded.stop_reason == "all keys refused (quota exhausted)"
    assert (guarded.sim_s is None) == ("wall" in clock)


def test_a_failed_cell_keeps_one_line_and_its_traceback_goes_to_run_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from extractbench.attacks import ATTACKS
    from extractbench.registry import Entry

    class Explodes:
        async def run(self, ctx: object) -> str:
            raise ValueError("the attack broke\nsecond line of the message")

    def make_explodes(**params: object) -> Explodes:
        return Explodes()

    ATTACKS.names()  # load the built-ins before adding one for this test
    monkeypatch.setitem(ATTACKS._entries, "explodes",
                        Entry("explodes", make_explodes, "raises", None))
    path = _scenario(tmp_path, TINY.replace("rp: {name: random-pool}", "rp: {name: explodes}"))
    result = run_scenario(load_scenario(path), path, tmp_path / "r", only="q5",
                          progress=False)
    [record] = result.records
    assert record.status == "error"
    assert record.error == "ValueError: the attack broke"
    assert not result.ok
    log = (result.run_dir / "run.log").read_text()
    assert "Traceback (most recent call last)" in log
    assert "second line of the message" in log and "in run" in log


def test_the_same_run_id_again_measures_only_the_cells_not_yet_recorded(tmp_path: Path) -> None:
    path = _scenario(tmp_path)
    sc = load_scenario(path)
    first = run_scenario(sc, path, tmp_path / "r", run_id="resume", only="q5", progress=False)
    [q5] = first.records
    harvest = sorted((first.run_dir / "harvest").iterdir())
    sizes = {p.name: p.stat().st_size for p in harvest}
    again = run_scenario(sc, path, tmp_path / "r", run_id="resume", progress=False)
    assert [r.budget_label for r in again.records] == ["q5", "q30"]
    assert again.records[0].model_dump() == q5.model_dump()  # not measured again
    lines = (again.run_dir / "records.jsonl").read_text().splitlines()
    assert len(lines) == 2  # no duplicate record
    assert {p.name: p.stat().st_size for p in harvest} == sizes  # nothing re-bought
    with pytest.raises(RunError, match="another scenario"):
        other = _scenario(tmp_path, TINY.replace("seeds: [3]", "seeds: [4]"))
        run_scenario(load_scenario(other), other, tmp_path / "r", run_id="resume",
                     progress=False)


def test_a_cell_pays_for_its_attackers_accounts(tmp_path: Path) -> None:
    text = (TINY.replace("rp: {name: random-pool}", "rp: {name: random-pool, keys: 3}")
            .replace("ref: {kind: reference, model: arith-ref}",
                     "ref: {kind: reference, model: arith-ref, prices: {account_usd: 0.5}}")
            .replace("budgets: [{queries: 5}, {queries: 30}]", "budgets: [{queries: 5}]"))
    path = _scenario(tmp_path, text)
    (record,) = run_scenario(load_scenario(path), path, tmp_path / "results", run_id="a",
                             progress=False).records
    assert record.status == "ok", record.error
    # three keys at $0.50; the reference endpoint's tokens are free, so that is the whole cost
    assert (record.accounts, record.accounts_usd) == (3, 1.5)
    assert record.cost_usd == 1.5 and record.queries == 5


COHORTS = DEFENDED.replace("gates:", """benign_traffic:
  cohorts:
    light: {users: 3, pacing_s: 20, min_queries_per_user: 3}
    heavy: {users: 2, pacing_s: 0.01, min_queries_per_user: 30, burst: 5}
gates:""")


def test_benign_cohorts_are_measured_each_on_its_own(tmp_path: Path) -> None:
    # the volume detector flags any key past 15 requests a minute: each heavy user sends 30 at
    # 100 a second, each light user 3, 20 s apart, all in the same cell against the same
    # defense state, on its simulated clock
    path = _scenario(tmp_path, COHORTS)
    result = run_scenario(load_scenario(path), path, tmp_path / "r", progress=False)
    guarded = next(r for r in result.records if r.endpoint == "guarded")
    assert guarded.status == "ok", guarded.error
    light, heavy = guarded.benign_cohorts["light"], guarded.benign_cohorts["heavy"]
    assert (light.keys, heavy.keys, guarded.benign_keys) == (3, 2, 5)
    assert heavy.queries >= 2 * 30 and light.queries >= 3 * 3
    assert (heavy.flagged_keys, heavy.harmed_keys) == (2, 2)
    assert (light.flagged_keys, light.harmed_keys) == (0, 0)
    assert guarded.fpr == pytest.approx(2 / 5) and guarded.harmed_rate == pytest.approx(2 / 5)
    # the blocked heavy users received less than the light ones, whom nothing touched
    assert heavy.received_score is not None and light.received_score is not None
    assert heavy.answered < heavy.queries and light.answered == light.queries
    assert heavy.received_score < light.received_score
    assert light.utility == pytest.approx(light.received_score / guarded.teacher_score)
    # each user's own utility, in key order; weighted by what each sent they make the cohort's
    assert heavy.user_utility is not None and light.user_utility is not None
    assert (len(heavy.user_utility), len(light.user_utility)) == (2, 3)
    sent = _benign_counts(tmp_path / "r")
    for name, cohort in (("heavy", heavy), ("light", light)):
        n = [sent[f"benign-{name}-{i}"] for i in range(cohort.keys)]
        assert cohort.user_utility is not None and cohort.utility is not None
        weighted = sum(u * k for u, k in zip(cohort.user_utility, n, strict=True)) / sum(n)
        assert weighted == pytest.approx(cohort.utility)
    # keys are named by cohort
    assert sorted(heavy for heavy in _benign_ids(tmp_path / "r")) == [
        "benign-heavy-0", "benign-heavy-1", "benign-light-0", "benign-light-1",
        "benign-light-2"]


def _benign_counts(results: Path) -> dict[str, int]:
    (log,) = results.glob("runs/*/benign/guarded__*.jsonl")
    counts: dict[str, int] = {}
    for line in log.read_text().splitlines():
        key = json.loads(line)["key_id"]
        counts[key] = counts.get(key, 0) + 1
    return counts


def _benign_ids(results: Path) -> set[str]:
    (log,) = results.glob("runs/*/benign/guarded__*.jsonl")
    return {json.loads(line)["key_id"] for line in log.read_text().splitlines()}


@pytest.mark.parametrize(("traffic", "problem"), [
    ("{users: 4, cohorts: {light: {users: 2}}}", "give users/pacing_s/min_queries_per_user or "
     "cohorts, not both"),
    ("{cohorts: {eval: {users: 2}}}", "'eval' is reserved"),
    ("{cohorts: {a: {users: 600}, b: {users: 600}}}", "at most 1000 users in all"),
])
def test_cohorts_are_validated(tmp_path: Path, traffic: str, problem: str) -> None:
    from extractbench.config.scenario import ScenarioError

    path = _scenario(tmp_path, TINY.replace("gates:", f"benign_traffic: {traffic}\ngates:"))
    with pytest.raises(ScenarioError, match=problem):
        load_scenario(path)


def test_a_benign_gap_longer_than_a_minute_needs_the_simulated_clock(tmp_path: Path) -> None:
    from extractbench.config.scenario import ScenarioError

    slow = "benign_traffic: {cohorts: {light: {users: 2, pacing_s: 3600}}}\n"
    ok = _scenario(tmp_path, DEFENDED.replace("gates:", slow + "gates:"))
    assert load_scenario(ok).clock.mode == "simulated"
    walled = _scenario(tmp_path, DEFENDED.replace("gates:", slow + "clock: {mode: wall}\ngates:"))
    with pytest.raises(ScenarioError, match=r"benign_traffic\.cohorts\.light\.pacing_s: 3600 s "
                       r"is longer than the 60 s a benign user may wait on the wall clock "
                       r"\(endpoint 'guarded' runs on it\)"):
        load_scenario(walled)


def test_a_run_judges_its_directions_and_a_contradicted_one_fails(tmp_path: Path) -> None:
    # one direction any run meets (the teacher scores at least 0.5 more than nothing) and one
    # no run can (transfer is at most 1, so q30 cannot beat q5 by 2)
    text = TINY + """directions:
  - claim: the teacher is better than nothing
    metric: student_score
    effect: {of: {budget: q30}}
    max: 1.0
  - claim: thirty queries beat five by two
    effect: {of: {budget: q30}, minus: {budget: q5}}
    min: 2.0
"""
    path = _scenario(tmp_path, text)
    result = run_scenario(load_scenario(path), path, tmp_path / "r", progress=False)
    assert [v.holds for v in result.directions] == [True, False]
    assert result.gate_failures == [f"direction {result.directions[1].text()}"]
    written = json.loads((result.run_dir / "directions.json").read_text())
    assert [d["holds"] for d in written] == [True, False]
    by = {r.budget_label: r for r in result.records}
    assert by["q30"].transfer is not None and by["q5"].transfer is not None
    assert written[1]["value"] == pytest.approx(by["q30"].transfer.value
                                                - by["q5"].transfer.value)
