"""One cell's measurement: campaign → hygiene check → student → scores → record.

:func:`run_cell` never raises for a broken cell: the record says ``status="error"`` with one
line for the user, and the full traceback goes to the run's log (``run.log``). A
:class:`~extractbench.measure.fleet.RunError` (the run itself cannot go on) is raised.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extractbench.attacks.base import train_pairs
from extractbench.config.plan import Cell
from extractbench.config.scenario import ReferenceEndpoint, Scenario
from extractbench.logs.harvest import HarvestLog, pairs
from extractbench.logs.provenance import provenance
from extractbench.logs.records import CellRecord, ItemScores
from extractbench.measure.attribution import watermark_fields
from extractbench.measure.baselines import Baselines
from extractbench.measure.collect import collect
from extractbench.measure.fit import fit_and_score
from extractbench.measure.fleet import Fleet, RunError
from extractbench.measure.progress import Progress
from extractbench.measure.tasks import TaskBank
from extractbench.stats import bootstrap_transfer
from extractbench.tasks import HeldOutContent

__all__ = ["CellRunner"]

log = logging.getLogger("extractbench.measure")


@dataclass
class CellRunner:
    """What measuring a cell needs from the run: the scenario, its endpoints, its tasks and
    baselines, where to write."""

    sc: Scenario
    path: Path
    scenario_hash: str
    run_id: str
    run_dir: Path
    fleet: Fleet
    tasks: TaskBank
    baselines: Baselines
    progress: Progress

    def run_cell(self, cell: Cell) -> CellRecord:
        """Measure ``cell``; a failure becomes an ``error`` record (traceback in the log)."""
        t0 = time.time()
        common = self._common(cell)
        if cell.endpoint in self.fleet.skipped:
            return CellRecord(status="skipped", error=self.fleet.skipped[cell.endpoint],
                              **common)
        try:
            return self._measure(cell, common, t0)
        except RunError:
            raise
        except Exception as exc:  # a broken cell is recorded, never crashes the run
            msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
            log.error("cell %s failed: %s\n%s", cell.id, msg, traceback.format_exc())
            return CellRecord(status="error", error=msg, wall_s=time.time() - t0, **common)

    def _common(self, cell: Cell) -> dict[str, Any]:
        ep = self.sc.endpoints[cell.endpoint]
        defenses = [d.name for d in ep.defenses] if isinstance(ep, ReferenceEndpoint) else []
        return dict(
            run_id=self.run_id, cell_id=cell.id, endpoint=cell.endpoint,
            profile=cell.endpoint, defenses=defenses,
            model=self.fleet.model_for(cell.endpoint, cell.task),
            task=cell.task, attack=cell.attack,
            attack_params=dict(self.sc.attacks[cell.attack].params),
            knows=self.sc.attacks[cell.attack].knows,
            student=cell.student, student_params=dict(self.sc.students[cell.student].params),
            budget=cell.budget.model_dump(exclude_none=True), budget_label=cell.budget.label(),
            seed=cell.seed,
            provenance=provenance(self.sc.name, str(self.path), self.scenario_hash),
        )

    def _set_aside(self, cell: Cell) -> None:
        """A defended cell is not replayed: the defense's per-key state is part of what it
        measures, and only live traffic rebuilds it. An interrupted attempt's logs (harvest,
        benign traffic, audit) move to ``interrupted/<n>/`` and the cell starts over. (An
        undefended cell's harvest stays: its attack is replayed against it.)"""
        logs = [self.run_dir / d / f"{cell.slug}.jsonl" for d in ("harvest", "benign", "audit")]
        if not any(p.exists() for p in logs):
            return
        aside = self.run_dir / "interrupted"
        n = 1
        while any((aside / str(n) / p.parent.name / p.name).exists() for p in logs):
            n += 1
        for p in logs:
            if p.exists():
                dest = aside / str(n) / p.parent.name / p.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                p.rename(dest)
        log.info("cell %s: a defended cell starts over; the interrupted attempt's logs are in "
                 "interrupted/%d/", cell.id, n)

    def _mixed(self, cell: Cell) -> dict[str, Any]:
        """The other tasks the scenario's benign cohorts also ask about (``mix``), by key,
        built for the cell's seed (the cell's own task is not among them)."""
        keys = {k for c in (self.sc.benign_traffic.cohorts or {}).values() for k in c.mix or {}}
        return {k: self.tasks.get(k, cell.seed) for k in sorted(keys) if k != cell.task}

    def _mixed_teachers(self, cell: Cell, mixed: dict[str, Any]) -> dict[str, Any]:
        """Each mixed task with the undefended teacher's mean held-out score on it."""
        out = {}
        for key, other in mixed.items():
            answers = self.baselines.teacher_answers(cell.endpoint, key, cell.seed)
            items = other.split("heldout")
            scores = [other.score(a, i) for a, i in zip(answers, items, strict=True)]
            out[key] = (other, sum(scores) / len(scores) if scores else 0.0)
        return out

    def _calibration(self, cell: Cell, entries: list[Any], got: Any,
                     task: Any, mixed: dict[str, Any] | None = None) -> dict[str, Any]:
        """The detector's figures calibrated on benign streams (a simulated clock only)."""
        from extractbench.measure.calibration import (
            benign_streams,
            calibrate,
            cohort_plans,
            stream_of_harvest,
        )

        ep = self.sc.endpoints[cell.endpoint]
        det = next((d for d in ep.defenses if d.name == "detector"), None)
        if det is None or got.sim_s is None or got.benign is None:
            return {}
        attacker = stream_of_harvest(entries)
        return calibrate(dict(det.params), attacker, benign_streams(got.benign.entries),
                         cohort_plans(self.sc.benign_traffic, self.fleet.keys.cohort_of, task,
                                      mixed, cell.task),
                         [i.prompt for i in task.split("benign")], until=got.sim_s,
                         cap=max(map(len, attacker.values()), default=0), seed=cell.seed)

    def _hydra(self, cell: Cell, entries: list[Any], got: Any) -> dict[str, Any]:
        """The hydra detector's sweeps over every key of the cell (a simulated clock only)."""
        from extractbench.measure.calibration import benign_streams, stream_of_harvest
        from extractbench.measure.hydra import sweep

        ep = self.sc.endpoints[cell.endpoint]
        spec = next((d for d in ep.defenses if d.name == "hydra"), None)
        if spec is None or got.sim_s is None or got.benign is None:
            return {}
        benign = benign_streams(got.benign.entries)
        streams = {**stream_of_harvest(entries), **benign}
        end = max([got.sim_s, *(s[-1][0] for s in streams.values() if s)])
        return sweep(dict(spec.params), streams, end, sorted(benign)).as_dict()

    def _measure(self, cell: Cell, common: dict[str, Any], t0: float) -> CellRecord:
        task = self.tasks.get(cell.task, cell.seed)
        items = task.split("heldout")
        teacher = self.baselines.teacher_answers(cell.endpoint, cell.task, cell.seed)
        base = self.baselines.base_scores(cell.task, cell.student, cell.seed)
        defended = self.baselines.defended_scores(cell.endpoint, cell.task, cell.seed)

        # 1. the campaign (with legitimate traffic alongside on a defended profile)
        ta = time.time()
        harvest_path = self.run_dir / "harvest" / f"{cell.slug}.jsonl"
        if self.fleet.live[cell.endpoint].pipeline is not None:
            self._set_aside(cell)
        audit_path = self.fleet.fresh_defenses(cell.endpoint, cell.slug)
        mixed = self._mixed(cell)
        got_campaign = collect(self.sc, self.fleet, cell, task, harvest_path, self.run_dir,
                               self.run_id, self.progress, mixed)
        attack_s = time.time() - ta
        entries = HarvestLog.read(harvest_path)
        got = sorted(pairs(entries), key=lambda e: e.index)
        overlap = HeldOutContent(task).overlap(e.request.prompt for e in got)
        if overlap:  # the oracle refuses such prompts: this is a bug, not a measurement
            raise RunError(f"cell {cell.id}: the harvest asks about {overlap} held-out "
                           "contents")

        # 2. the student, 3. its scores
        spec = self.sc.students[cell.student]
        log.info("cell %s: campaign done (%d pairs, %s); training %s", cell.id, len(got),
                 got_campaign.stop_reason, spec.name)
        self.progress.status(f"{cell.id}: training {spec.name} on {len(got)} pairs")
        te = time.time()
        student = fit_and_score(spec, train_pairs(entries), cell.seed, task)
        eval_s = time.time() - te - student.fit.train_s
        t_scores = [task.score(a, i) for a, i in zip(teacher, items, strict=True)]
        fid = [float(t is not None and s == t)
               for s, t in zip(student.answers, teacher, strict=True)]
        interval = bootstrap_transfer(t_scores, base, student.scores, seed=cell.seed)

        # 4. the defender's side: detection, and what was stolen before the flag
        detection: dict[str, Any] = {}
        if audit_path is not None:
            from extractbench.measure.defended import detection_fields

            detection = detection_fields(audit_path, entries, [k for k, _ in
                                                               self.fleet.keys.benign],
                                         got_campaign.benign, task, spec, cell.seed,
                                         t_scores, base, self.fleet.keys.cohort_of,
                                         simulated=got_campaign.sim_s is not None,
                                         mixed=self._mixed_teachers(cell, mixed))
            detection["calibration"] = self._calibration(cell, entries, got_campaign, task,
                                                         mixed)
            detection["hydra"] = self._hydra(cell, entries, got_campaign)
        # how fast it leaked in simulated time (the cells the board ranks on)
        ranking = self.sc.ranking
        if (got_campaign.sim_s is not None and ranking is not None
                and ranking.tasks is not None and cell.task in ranking.tasks):
            from extractbench.measure.prefix import prefix_fields

            self.progress.status(f"{cell.id}: students on harvest prefixes")
            detection.update(prefix_fields(entries, spec, cell.seed, task, t_scores, base,
                                           interval.value))
        # 5. attribution (a watermark on the profile)
        watermark = watermark_fields(
            self.fleet.defenses(cell.endpoint),
            lambda: self.fleet.teacher_model(cell.endpoint, cell.task), entries,
            student.predictions, task, spec, cell.seed,
            status=lambda s: self.progress.status(f"{cell.id}: {s}"))
        n = len(items)
        teacher_mean = sum(t_scores) / n
        defended_mean = sum(defended) / n
        stats = got_campaign.stats
        spent = stats.spent
        return CellRecord(
            status="ok", **common, **detection, **watermark,
            defended_score=defended_mean,
            utility=defended_mean / teacher_mean if teacher_mean else None,
            n_heldout=n, heldout_overlap=overlap,
            teacher_score=teacher_mean, base_score=sum(base) / n,
            base_kind=self.baselines.base_kind(cell.task, cell.student, cell.seed),
            student_score=sum(student.scores) / n, transfer=interval, fidelity=sum(fid) / n,
            items=ItemScores(teacher=t_scores, base=base, student=student.scores, fidelity=fid,
                             defended=defended),
            queries=spent.queries, failed_queries=sum(stats.errors.values()),
            input_tokens=spent.input_tokens, output_tokens=spent.output_tokens,
            tokens_estimated=any(e.tokens_estimated for e in got),
            cost_usd=spent.usd, accounts=got_campaign.accounts,
            accounts_usd=got_campaign.accounts_usd, harvest_pairs=len(got),
            clock="simulated" if got_campaign.sim_s is not None else "wall",
            sim_s=got_campaign.sim_s,
            errors_by_type=dict(stats.errors),
            stop_reason=got_campaign.stop_reason,
            train_steps=student.fit.steps, train_tokens=student.fit.tokens_seen,
            train_loss=student.fit.final_loss, converged=student.fit.converged,
            wall_s=time.time() - t0, attack_s=attack_s, train_s=student.fit.train_s,
            eval_s=eval_s, harvest_path=str(harvest_path.relative_to(self.run_dir)),
        )
