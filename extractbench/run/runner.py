"""Run a scenario's grid of cells: endpoints up, campaigns through the oracle, students trained
on the harvest, scored on held-out items, one :class:`CellRecord` per cell.

The run lives in ``RESULTS/runs/<run-id>/``: ``records.jsonl`` (append-only),
``harvest/<cell>.jsonl`` (one append-only harvest log per cell; a re-run resumes it),
``eval/`` (the evaluator's own logs for teacher scores) and ``scenario.yaml`` (a copy).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from extractbench.attacks import ATTACKS, AttackContext
from extractbench.attacks.base import train_pairs, train_prompt_map
from extractbench.campaign.oracle import Oracle
from extractbench.config.budget import Budget
from extractbench.config.scenario import (
    Gate,
    Grid,
    ReferenceEndpoint,
    RemoteEndpoint,
    Scenario,
    missing_keys,
    scenario_hash,
)
from extractbench.endpoints.clients import Endpoint
from extractbench.errors import ExtractbenchError
from extractbench.logs.harvest import HarvestLog, pairs
from extractbench.logs.provenance import provenance
from extractbench.logs.records import CellRecord, ItemScores
from extractbench.run.progress import Progress
from extractbench.stats import bootstrap_transfer
from extractbench.students import STUDENTS
from extractbench.tasks import TASKS, Task, prompt_hash

T = TypeVar("T")

BENIGN_EVAL_KEYS = 10
"""Keys the held-out prompts are spread over when measuring ``defended_score``."""


class RunError(ExtractbenchError):
    """A run that cannot start or go on; the message is one line for the user."""


@dataclass(frozen=True)
class Cell:
    """Coordinates of one measurement."""

    endpoint: str
    task: str
    attack: str
    budget: Budget
    student: str
    seed: int

    @property
    def id(self) -> str:
        return "/".join([self.endpoint, self.task, self.attack, self.budget.label(),
                         self.student, f"s{self.seed}"])

    @property
    def slug(self) -> str:
        return self.id.replace("/", "__")


@dataclass
class RunResult:
    run_dir: Path
    records: list[CellRecord]
    gate_failures: list[str] = field(default_factory=list)


@dataclass
class _Live:
    """A reachable endpoint: where to send, with which keys."""

    endpoint: Endpoint
    attacker_keys: list[tuple[str, str]]
    eval_key: tuple[str, str]
    prices: Any
    rpm: float | None = None
    tpm: float | None = None
    state: Any = None  # the reference server's ServerState, for defended endpoints


def _key(key_id: str) -> tuple[str, str]:
    return key_id, f"sk-eb-{key_id}-{secrets.token_hex(12)}"


def new_run_id(sc: Scenario, sc_hash: str) -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{sc.name}-{sc_hash[:8]}"


class Runner:
    """Holds a scenario's endpoints open while its cells run. Use as a context manager."""

    def __init__(self, scenario: Scenario, path: Path, results_dir: Path,
                 run_id: str | None = None, progress: Progress | None = None) -> None:
        self.sc = scenario
        self.path = path
        self.hash = scenario_hash(scenario)
        self.run_id = run_id or new_run_id(scenario, self.hash)
        self.run_dir = results_dir / "runs" / self.run_id
        self.progress = progress or Progress(enabled=False)
        self._gated: dict[str, CellRecord] = {}  # this run's records, for `beats` gates
        self._stack = ExitStack()
        self._live: dict[str, _Live] = {}
        self._upstream: dict[str, _Live] = {}  # undefended upstream per endpoint, for teacher
        self._skipped: dict[str, str] = {}
        self._tasks: dict[tuple[str, int], Task] = {}
        self._teacher: dict[tuple[str, str, int], list[str | None]] = {}
        self._base: dict[tuple[str, str, int], list[float]] = {}
        self._defended: dict[tuple[str, str, int], list[float]] = {}
        self._benign_keys: list[tuple[str, str]] = []
        self._benign_eval_keys: list[tuple[str, str]] = []
        self._n_attacker_keys = max(a.keys for a in scenario.attacks.values())

    # -- grid -------------------------------------------------------------------------------

    def cells(self) -> list[Cell]:
        return grid(self.sc)

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Runner:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "harvest").mkdir(exist_ok=True)
        (self.run_dir / "eval").mkdir(exist_ok=True)
        copy = self.run_dir / "scenario.yaml"
        if not copy.exists() and self.path.exists():
            shutil.copyfile(self.path, copy)
        try:
            self._start_endpoints()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start_endpoints(self) -> None:
        from extractbench.reference.teachers import load_reference
        from extractbench.serving import RunningServer, ServedModel, create_app

        missing = missing_keys(self.sc)
        attacker = [_key(f"attacker-{i}") for i in range(self._n_attacker_keys)]
        evaluator = _key("evaluator")
        self._benign_keys = [_key(f"benign-{i}") for i in range(self.sc.benign_traffic.users)]
        self._benign_eval_keys = [_key(f"benign-eval-{i}") for i in range(BENIGN_EVAL_KEYS)]
        served: dict[str, ServedModel] = {}
        self._served = served
        for name, ep in self.sc.endpoints.items():
            if isinstance(ep, RemoteEndpoint):
                if name in missing:
                    self._skipped[name] = (f"environment variable {ep.api_key_env} is not set "
                                           f"(export it to run endpoint {name!r})")
                    continue
                import os

                secret = os.environ[ep.api_key_env]
                direct = Endpoint(api=ep.api, base_url=ep.base_url, model=ep.model,
                                  timeout_s=ep.timeout_s, sampling_params=ep.sampling_params,
                                  max_tokens_param=ep.max_tokens_param)
                live = _Live(
                    direct,
                    attacker_keys=[(f"attacker-{i}", secret)
                                   for i in range(self._n_attacker_keys)],
                    eval_key=("evaluator", secret), prices=ep.prices,
                    rpm=ep.rate_limits.requests_per_minute, tpm=ep.rate_limits.tokens_per_minute,
                )
                _preflight(name, ep.base_url)
                self._upstream[name] = live
                self._live[name] = (self._proxied(name, ep, live, secret, attacker, evaluator)
                                    if ep.defenses else live)
                continue
            assert isinstance(ep, ReferenceEndpoint)
            names = self._reference_models(name, ep)
            for m in names:
                if m not in served:
                    try:
                        served[m] = ServedModel(m, load_reference(m))
                    except (KeyError, FileNotFoundError) as exc:
                        raise RunError(f"{self.path}: endpoints.{name}.model: {exc.args[0]}"
                                       ) from None
            stack = _build_stack(ep, name, self.path, self.run_dir)
            app = create_app({m: served[m] for m in names},
                             self._local_keys(attacker, evaluator), stack)
            server = self._stack.enter_context(RunningServer(app))
            base = server.openai_base_url if ep.api == "openai" else server.anthropic_base_url
            self._live[name] = _Live(Endpoint(api=ep.api, base_url=base, model=names[0]),
                                     attacker_keys=attacker, eval_key=evaluator, prices=ep.prices,
                                     state=app.state.extractbench if ep.defenses else None)
            if not ep.defenses:
                self._upstream[name] = self._live[name]
        # defended reference endpoints are scored against the same models undefended
        for name, ep in self.sc.endpoints.items():
            if isinstance(ep, ReferenceEndpoint) and name not in self._upstream:
                names = self._reference_models(name, ep)
                same = [n for n, e in self.sc.endpoints.items() if n in self._upstream
                        and isinstance(e, ReferenceEndpoint) and e.api == ep.api
                        and set(names) <= set(self._reference_models(n, e))]
                if same:
                    self._upstream[name] = self._upstream[same[0]]
                    continue
                keys = {evaluator[1]: evaluator[0]}
                app = create_app({m: served[m] for m in names}, keys, None)
                server = self._stack.enter_context(RunningServer(app))
                base = server.openai_base_url if ep.api == "openai" else server.anthropic_base_url
                self._upstream[name] = _Live(Endpoint(api=ep.api, base_url=base, model=names[0]),
                                             attacker_keys=[], eval_key=evaluator,
                                             prices=ep.prices)

    def _local_keys(self, attacker: list[tuple[str, str]],
                    evaluator: tuple[str, str]) -> dict[str, str]:
        """API key -> key id for every run-local key a loopback server must accept."""
        return {key: kid for kid, key in [*attacker, evaluator, *self._benign_keys,
                                          *self._benign_eval_keys]}

    def _proxied(self, name: str, ep: RemoteEndpoint, direct: _Live, secret: str,
                 attacker: list[tuple[str, str]], evaluator: tuple[str, str]) -> _Live:
        """The defense proxy in front of a remote endpoint, on loopback: the attack, the benign
        users and the defended evaluation go through it with run-local keys; the proxy calls
        the upstream with the real key (never forwarded from a client, never logged). The
        undefended figures (teacher score) come from the upstream directly."""
        from extractbench.serving import RunningServer, create_proxy_app

        stack = _build_stack(ep, name, self.path, self.run_dir)
        keys = self._local_keys(attacker, evaluator)
        try:
            app = create_proxy_app(ep.base_url, ep.api, secret, stack, keys,
                                   timeout_s=ep.timeout_s)
        except ValueError as exc:
            raise RunError(f"{self.path}: endpoints.{name}.defenses: {exc}") from None
        server = self._stack.enter_context(RunningServer(app))
        base = server.openai_base_url if ep.api == "openai" else server.anthropic_base_url
        return _Live(direct.endpoint.model_copy(update={"base_url": base}),
                     attacker_keys=attacker, eval_key=evaluator, prices=direct.prices,
                     rpm=direct.rpm, tpm=direct.tpm, state=app.state.extractbench_proxy)

    def _reference_models(self, name: str, ep: ReferenceEndpoint) -> list[str]:
        """Models a reference endpoint serves: its `model`, or each task's own teacher."""
        if ep.model is not None:
            return [ep.model]
        return sorted({self.model_for(name, t) for t in self.sc.tasks})

    def model_for(self, endpoint: str, task_key: str) -> str:
        """The model a cell queries: the endpoint's, or the task family's reference teacher."""
        ep = self.sc.endpoints[endpoint]
        if ep.model is not None:
            return ep.model
        return str(getattr(self.task(task_key, self.sc.seeds[0]), "reference_model", "arith-ref"))

    def answer_tokens(self, endpoint: str, task: Task) -> int:
        """Output tokens allowed per answer: the task's, unless the endpoint overrides it."""
        ep = self.sc.endpoints[endpoint]
        if isinstance(ep, RemoteEndpoint) and ep.answer_tokens is not None:
            return ep.answer_tokens
        return task.max_answer_tokens

    def _endpoint(self, live: _Live, endpoint: str, task_key: str) -> Endpoint:
        return live.endpoint.model_copy(update={"model": self.model_for(endpoint, task_key)})

    # -- shared per-cell inputs -------------------------------------------------------------

    def task(self, key: str, seed: int) -> Task:
        if (key, seed) not in self._tasks:
            spec = self.sc.tasks[key]
            sizes = {"attack_pool": spec.attack_pool, "heldout": spec.heldout,
                     "benign": spec.benign}
            self._tasks[(key, seed)] = TASKS.get(spec.family)(seed, sizes, **spec.params)
        return self._tasks[(key, seed)]

    def teacher_answers(self, endpoint: str, task_key: str, seed: int) -> list[str | None]:
        """The undefended upstream's extracted answers on the held-out split (cached)."""
        cache_key = (endpoint, task_key, seed)
        if cache_key in self._teacher:
            return self._teacher[cache_key]
        live = self._upstream[endpoint]
        task = self.task(task_key, seed)
        items = task.split("heldout")
        log = HarvestLog(self.run_dir / "eval" / f"teacher__{endpoint}__{task_key}__s{seed}.jsonl")
        oracle = Oracle(self._endpoint(live, endpoint, task_key), [live.eval_key],
                        Budget(queries=3 * len(items)), log,
                        prices=live.prices, concurrency=8, seed=seed,
                        requests_per_minute=live.rpm, tokens_per_minute=live.tpm,
                        run_id=self.run_id, cell_id=f"teacher/{endpoint}/{task_key}/s{seed}",
                        attack="evaluator")
        done: dict[str, str] = {e.request.prompt_hash: e.response.text
                                for e in pairs(log.entries())}
        todo = [i.prompt for i in items if prompt_hash(i.prompt) not in done]

        async def go() -> None:
            try:
                await oracle.query_many(todo, max_tokens=self.answer_tokens(endpoint, task),
                                        temperature=0.0)
            finally:
                await oracle.aclose()

        _serving_threads(lambda: asyncio.run(go()))
        if oracle.fatal_error is not None:
            raise RunError(f"endpoint {endpoint!r}: {oracle.fatal_error.message} "
                           f"({oracle.fatal_error.error_type}; check the API key)")
        done.update({e.request.prompt_hash: e.response.text for e in pairs(log.entries())})
        if not done:
            errs = oracle.stats().errors
            raise RunError(f"endpoint {endpoint!r} at {live.endpoint.base_url} answered no "
                           f"held-out query (errors: {errs or 'none'}); is it reachable?")
        answers = [task.extract(done[prompt_hash(i.prompt)]) if prompt_hash(i.prompt) in done
                   else None for i in items]
        self._teacher[cache_key] = answers
        return answers

    def base_scores(self, task_key: str, student_key: str, seed: int) -> list[float]:
        """The student recipe trained on no teacher data, scored on held-out (cached)."""
        cache_key = (task_key, student_key, seed)
        if cache_key not in self._base:
            task = self.task(task_key, seed)
            spec = self.sc.students[student_key]
            student = STUDENTS.get(spec.name)(**spec.params)
            student.fit([], seed)
            items = task.split("heldout")
            preds = student.predict([i.prompt for i in items], task.max_answer_tokens)
            self._base[cache_key] = [task.score(task.extract(p), i)
                                     for p, i in zip(preds, items, strict=True)]
        return self._base[cache_key]

    def _fresh_defenses(self, endpoint: str, label: str) -> Path | None:
        """Give a defended endpoint fresh per-key state and its own audit file."""
        from extractbench.defenses import AuditLog

        live = self._live[endpoint]
        if live.state is None:
            return None
        path = self.run_dir / "audit" / f"{label}.jsonl"
        live.state.stack.reset(AuditLog(path))
        live.state.reset()
        return path

    def defended_scores(self, endpoint: str, task_key: str, seed: int) -> list[float]:
        """Held-out scores through the defended profile, as benign users see it (cached). An
        undefended profile answers as the teacher does."""
        from extractbench.campaign.benign import defended_score

        cache_key = (endpoint, task_key, seed)
        if cache_key in self._defended:
            return self._defended[cache_key]
        task = self.task(task_key, seed)
        items = task.split("heldout")
        live = self._live[endpoint]
        if live.state is None:
            teacher = self.teacher_answers(endpoint, task_key, seed)
            scores = [task.score(a, i) for a, i in zip(teacher, items, strict=True)]
        else:
            self._fresh_defenses(endpoint, f"defended__{endpoint}__{task_key}__s{seed}")
            log = self.run_dir / "eval" / f"defended__{endpoint}__{task_key}__s{seed}.jsonl"
            result = _serving_threads(lambda: asyncio.run(defended_score(
                self._endpoint(live, endpoint, task_key), self._benign_eval_keys, task, items,
                log_path=log, max_tokens=self.answer_tokens(endpoint, task), seed=seed)))
            scores = result.scores
        self._defended[cache_key] = scores
        return scores

    # -- one cell ---------------------------------------------------------------------------

    def run_cell(self, cell: Cell) -> CellRecord:
        t0 = time.time()
        common = self._common(cell)
        if cell.endpoint in self._skipped:
            return CellRecord(status="skipped", error=self._skipped[cell.endpoint], **common)
        try:
            return self._measure(cell, common, t0)
        except RunError:
            raise
        except Exception as exc:  # a broken cell is recorded, never crashes the run
            msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
            return CellRecord(status="error", error=msg, wall_s=time.time() - t0, **common)

    def _common(self, cell: Cell) -> dict[str, Any]:
        ep = self.sc.endpoints[cell.endpoint]
        defenses = [d.name for d in ep.defenses] if isinstance(ep, ReferenceEndpoint) else []
        return dict(
            run_id=self.run_id, cell_id=cell.id, endpoint=cell.endpoint,
            profile=cell.endpoint, defenses=defenses,
            model=self.model_for(cell.endpoint, cell.task),
            task=cell.task, attack=cell.attack,
            attack_params=dict(self.sc.attacks[cell.attack].params),
            student=cell.student, student_params=dict(self.sc.students[cell.student].params),
            budget=cell.budget.model_dump(exclude_none=True), budget_label=cell.budget.label(),
            seed=cell.seed,
            provenance=provenance(self.sc.name, str(self.path), self.hash),
        )

    def _measure(self, cell: Cell, common: dict[str, Any], t0: float) -> CellRecord:
        task = self.task(cell.task, cell.seed)
        items = task.split("heldout")
        teacher = self.teacher_answers(cell.endpoint, cell.task, cell.seed)
        base = self.base_scores(cell.task, cell.student, cell.seed)
        defended = self.defended_scores(cell.endpoint, cell.task, cell.seed)

        # 1. the campaign (with legitimate traffic alongside on a defended profile)
        ta = time.time()
        harvest_path = self.run_dir / "harvest" / f"{cell.slug}.jsonl"
        audit_path = self._fresh_defenses(cell.endpoint, cell.slug)
        stop_reason, oracle_stats, benign = self._campaign(cell, task, harvest_path)
        attack_s = time.time() - ta
        entries = HarvestLog.read(harvest_path)
        got = sorted(pairs(entries), key=lambda e: e.index)
        training = train_pairs(entries)
        heldout_hashes = {prompt_hash(i.prompt) for i in items}
        leaked = [e.index for e in got if e.request.prompt_hash in heldout_hashes]
        if leaked:
            raise RunError(f"cell {cell.id}: attack sent held-out prompts (query {leaked[0]})")

        # 2. the student
        spec = self.sc.students[cell.student]
        student = STUDENTS.get(spec.name)(**spec.params)
        self.progress.status(f"{cell.id}: training {spec.name} on {len(got)} pairs")
        fit = student.fit(training, cell.seed)

        # 3. scoring
        te = time.time()
        preds = student.predict([i.prompt for i in items], task.max_answer_tokens)
        student_ans = [task.extract(p) for p in preds]
        s_scores = [task.score(a, i) for a, i in zip(student_ans, items, strict=True)]
        t_scores = [task.score(a, i) for a, i in zip(teacher, items, strict=True)]
        fid = [float(t is not None and s == t) for s, t in zip(student_ans, teacher, strict=True)]
        eval_s = time.time() - te
        interval = bootstrap_transfer(t_scores, base, s_scores, seed=cell.seed)
        spent = oracle_stats.spent
        n = len(items)

        # 4. the defender's side: detection, and what was stolen before the flag
        detection: dict[str, Any] = {}
        if audit_path is not None:
            from extractbench.run.detection import before_flag, read_events, summarize

            benign_ids = [k for k, _ in self._benign_keys]
            summary = summarize(read_events(audit_path), entries, benign_ids)
            detection = dict(
                flagged_at=summary.flagged_at, flag_reason=summary.flag_reason,
                benign_keys=summary.benign_keys, benign_flagged_keys=summary.benign_flagged_keys,
                fpr=summary.fpr, benign_queries=benign.queries if benign is not None else 0,
                benign_score=(benign.score(task, task.split("benign"))
                              if benign is not None else None),
            )
            if summary.flagged_at is not None:
                early = train_pairs(before_flag(entries, summary.flagged_at))
                pre = STUDENTS.get(spec.name)(**spec.params)
                pre.fit(early, cell.seed)
                pre_preds = pre.predict([i.prompt for i in items], task.max_answer_tokens)
                pre_scores = [task.score(task.extract(p), i)
                              for p, i in zip(pre_preds, items, strict=True)]
                detection["transfer_at_flag"] = bootstrap_transfer(t_scores, base, pre_scores,
                                                                   seed=cell.seed)
        watermark = self._watermark_test(cell, entries, preds, items, task)
        teacher_mean = sum(t_scores) / n
        defended_mean = sum(defended) / n
        return CellRecord(
            status="ok", **common, **detection, **watermark,
            defended_score=defended_mean,
            utility=defended_mean / teacher_mean if teacher_mean else None,
            n_heldout=n,
            teacher_score=sum(t_scores) / n, base_score=sum(base) / n,
            student_score=sum(s_scores) / n, transfer=interval, fidelity=sum(fid) / n,
            items=ItemScores(teacher=t_scores, base=base, student=s_scores, fidelity=fid,
                             defended=defended),
            queries=spent.queries, failed_queries=sum(oracle_stats.errors.values()),
            input_tokens=spent.input_tokens, output_tokens=spent.output_tokens,
            tokens_estimated=any(e.tokens_estimated for e in got),
            cost_usd=spent.usd, harvest_pairs=len(got), errors_by_type=dict(oracle_stats.errors),
            stop_reason=stop_reason,
            wall_s=time.time() - t0, attack_s=attack_s, train_s=fit.train_s, eval_s=eval_s,
            harvest_path=str(harvest_path.relative_to(self.run_dir)),
        )

    def _watermark_test(self, cell: Cell, entries: list[Any], preds: list[str],
                        items: list[Any], task: Task) -> dict[str, Any]:
        """On a profile with a ``watermark`` defense: the detection test on the student's
        held-out outputs, and the same test on a *control* student (same recipe and seed)
        trained on the same prompts answered by the clean teacher, greedily and without the
        watermark. Without the control, a z-score says nothing: short, repetitive outputs
        drift from 0 with no watermark at all. Repeated (previous, token) pairs count once."""
        from extractbench.defenses.watermark import Watermark
        from extractbench.logs.harvest import ResponseEntry
        from extractbench.reference.generation import greedy
        from extractbench.students import TrainPair

        live = self._live[cell.endpoint]
        marks = [d for d in live.state.stack.defenses
                 if isinstance(d, Watermark)] if live.state is not None else []
        if not marks:
            return {}
        mark = marks[0]
        test = mark.detect(preds, unique=True)
        self.progress.status(f"{cell.id}: training the clean control student")
        remap = train_prompt_map(entries)
        answered = sorted((e for e in entries if isinstance(e, ResponseEntry)),
                          key=lambda e: e.index)
        sent = [(remap.get(e.index, e.request.prompt), e.request.prompt,
                 e.request.params.max_tokens) for e in answered]
        sent = [s for s in sent if s[0] is not None]
        teacher = self._served[self.model_for(cell.endpoint, cell.task)].model
        room = max((m for _, _, m in sent), default=task.max_answer_tokens)
        clean = greedy(teacher, [p for _, p, _ in sent], room)
        spec = self.sc.students[cell.student]
        control = STUDENTS.get(spec.name)(**spec.params)
        control.fit([TrainPair(prompt=str(t), response=r)
                     for (t, _, _), r in zip(sent, clean, strict=True)], cell.seed)
        ctest = mark.detect(control.predict([i.prompt for i in items], task.max_answer_tokens),
                            unique=True)
        return dict(watermark_z=test.z, watermark_p=test.p,
                    watermark_control_z=ctest.z, watermark_control_p=ctest.p)

    def _campaign(self, cell: Cell, task: Task, harvest_path: Path) -> tuple[str, Any, Any]:
        from extractbench.campaign.benign import run_benign

        live = self._live[cell.endpoint]
        spec = self.sc.attacks[cell.attack]
        keys = live.attacker_keys[: spec.keys]
        log = HarvestLog(harvest_path)
        total = cell.budget.queries
        self.progress.start_cell(cell.id, total)
        endpoint = self._endpoint(live, cell.endpoint, cell.task)
        oracle = Oracle(
            endpoint, keys, cell.budget, log, prices=live.prices,
            concurrency=spec.concurrency, seed=cell.seed,
            requests_per_minute=live.rpm, tokens_per_minute=live.tpm,
            on_progress=self.progress.spent, run_id=self.run_id, cell_id=cell.id,
            attack=spec.name,
        )
        attack = ATTACKS.get(spec.name)(**spec.params)
        heldout = {prompt_hash(i.prompt) for i in task.split("heldout")}
        benign_split = [i.prompt for i in task.split("benign")]
        ctx = AttackContext(
            oracle=oracle, pool=[i.prompt for i in task.split("attack_pool")], task=task.name,
            max_tokens=self.answer_tokens(cell.endpoint, task),
            rng=random.Random(f"{cell.seed}/{cell.attack}/{cell.task}"), params=dict(spec.params),
            seed_prompts=_public_examples(task),
            reasoning_suffix=getattr(task, "reasoning_suffix", None),
            reasoning_max_tokens=getattr(task, "reasoning_max_tokens", None),
            may_send=lambda p: prompt_hash(p) not in heldout,
        )
        with_benign = live.state is not None and bool(benign_split)

        async def go() -> tuple[str, Any]:
            stop = asyncio.Event()

            async def attack_then_stop() -> str:
                try:
                    return await attack.run(ctx)
                finally:
                    stop.set()

            try:
                if not with_benign:
                    return await attack_then_stop(), None
                benign_log = self.run_dir / "benign" / f"{cell.slug}.jsonl"
                benign_log.parent.mkdir(exist_ok=True)
                reason, benign = await asyncio.gather(
                    attack_then_stop(),
                    run_benign(endpoint, self._benign_keys, benign_split,
                               max_tokens=task.max_answer_tokens,
                               pacing_s=self.sc.benign_traffic.pacing_s, stop=stop,
                               seed=cell.seed,
                               min_per_key=self.sc.benign_traffic.min_queries_per_user,
                               log_path=benign_log),
                )
                return reason, benign
            finally:
                await oracle.aclose()

        stop_reason, benign = _serving_threads(lambda: asyncio.run(go()))
        if oracle.fatal_error is not None and oracle.stats().answers == 0 and live.state is None:
            raise RunError(f"endpoint {cell.endpoint!r}: {oracle.fatal_error.message} "
                           f"({oracle.fatal_error.error_type}; check the API key)")
        return stop_reason, oracle.stats(), benign

    # -- gates ------------------------------------------------------------------------------

    def check_gates(self, record: CellRecord) -> list[str]:
        """The gates ``record`` fails. A `beats` gate compares a pair of cells, so it is
        checked when the second of the pair is done (records of this run are kept here)."""
        self._gated[record.cell_id] = record
        out = []
        for gate in self.sc.gates:
            if gate.beats is not None:
                out.extend(self._check_beats(gate, record))
                if record.student == gate.beats:  # the floor itself is not held to min/max
                    continue
            if not _gate_applies(gate, record):
                continue
            value = _gate_value(gate, record)
            if value is None:
                continue
            if gate.min is not None and value < gate.min:
                out.append(f"{record.cell_id}: {gate.metric} {value:.3f} < min {gate.min}")
            if gate.max is not None and value > gate.max:
                out.append(f"{record.cell_id}: {gate.metric} {value:.3f} > max {gate.max}")
        return out

    def _check_beats(self, gate: Gate, record: CellRecord) -> list[str]:
        assert gate.beats is not None
        if record.student == gate.beats:  # the floor finished second: check every partner
            pairs = [(r, record) for r in self._gated.values()
                     if r.student != gate.beats and _same_cell_but_student(r, record)]
        else:
            pairs = [(record, r) for r in self._gated.values()
                     if r.student == gate.beats and _same_cell_but_student(r, record)]
        out = []
        for learned, floor in pairs:
            if not _gate_applies(gate, learned):
                continue
            value, low = _gate_value(gate, learned), _gate_value(gate, floor)
            if value is None or low is None:
                continue
            if value <= low:
                out.append(f"{learned.cell_id}: {gate.metric} {value:.3f} does not beat "
                           f"{gate.beats} ({low:.3f})")
        return out


def _gate_applies(gate: Gate, record: CellRecord) -> bool:
    coords: dict[str, object] = {
        "endpoint": record.endpoint, "task": record.task, "attack": record.attack,
        "student": record.student, "budget": record.budget_label, "seed": record.seed,
    }
    return record.status == "ok" and all(str(coords.get(k)) == str(v)
                                         for k, v in gate.where.items())


def _gate_value(gate: Gate, record: CellRecord) -> float | None:
    if record.status != "ok":
        return None
    if gate.metric == "transfer":
        return None if record.transfer is None else record.transfer.value
    value: float | None = getattr(record, gate.metric)
    return value


def _same_cell_but_student(a: CellRecord, b: CellRecord) -> bool:
    return (a.endpoint, a.task, a.attack, a.budget_label, a.seed) == (
        b.endpoint, b.task, b.attack, b.budget_label, b.seed)


def grid(sc: Scenario) -> list[Cell]:
    """The scenario's cells: the union of its grids (default: the full cross product of
    endpoints x tasks x attacks x budgets x students x seeds), budgets smallest first."""
    budgets = sorted(sc.budgets, key=_budget_size)
    cells: dict[str, Cell] = {}
    for g in sc.grids or [Grid()]:
        def pick(section: str, names: list[Any], g: Grid = g) -> list[Any]:
            chosen = getattr(g, section)
            return [n for n in names if chosen is None or n in chosen]

        for e in pick("endpoints", list(sc.endpoints)):
            for t in pick("tasks", list(sc.tasks)):
                for a in pick("attacks", list(sc.attacks)):
                    for b in budgets:
                        if g.budgets is not None and b.label() not in g.budgets:
                            continue
                        for s in pick("students", list(sc.students)):
                            for seed in pick("seeds", list(sc.seeds)):
                                cell = Cell(e, t, a, b, s, seed)
                                cells.setdefault(cell.id, cell)
    return list(cells.values())


def _serving_threads(fn: Callable[[], T]) -> T:
    """Run ``fn`` with one torch thread: the in-process reference server answers many tiny
    requests, for which thread hand-offs cost more than they save. Training gets them back."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def _preflight(name: str, base_url: str) -> None:
    """Fail fast, in one line, when a remote endpoint cannot be reached at all."""
    import httpx

    try:
        httpx.get(base_url, timeout=10.0)
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunError(f"endpoint {name!r} at {base_url} is unreachable ({reason}); "
                       "check base_url and the network") from None


def _budget_size(b: Budget) -> tuple[float, float, float]:
    return (b.queries or 0, b.tokens or 0, b.usd or 0)


def _public_examples(task: Task, n: int = 8) -> list[str]:
    """What an attacker without the pool knows of a task: a few prompts of the kind its
    documentation shows (drawn from the benign split, never from held-out)."""
    return [i.prompt for i in task.split("benign")[:n]]


def _build_stack(ep: ReferenceEndpoint | RemoteEndpoint, name: str, path: Path,
                 run_dir: Path) -> Any:
    from extractbench.defenses import AuditLog, DefenseConfigError, DefenseStack

    if not ep.defenses:
        return None
    audit = AuditLog(run_dir / "audit" / f"{name}.jsonl")
    try:
        return DefenseStack.from_specs(ep.defenses, audit, where=f"endpoints.{name}.defenses")
    except DefenseConfigError as exc:
        raise RunError(f"{path}: {exc}") from None


def iter_run(runner: Runner, cells: list[Cell],
             on_record: Callable[[CellRecord], None] | None = None) -> Iterator[CellRecord]:
    """Run cells in order, appending each record to the run's records.jsonl."""
    records_path = runner.run_dir / "records.jsonl"
    for cell in cells:
        record = runner.run_cell(cell)
        with records_path.open("a", encoding="utf-8") as f:
            f.write(record.model_dump_json() + "\n")
        runner.progress.cell_done(record)
        if on_record is not None:
            on_record(record)
        yield record


def run_scenario(sc: Scenario, path: Path, results_dir: Path, run_id: str | None = None,
                 only: str | None = None, progress: bool = True,
                 fail_fast: bool = False) -> RunResult:
    """Run every cell (or those whose id contains ``only``) and return the records."""
    with Progress(enabled=progress) as prog:
        runner = Runner(sc, path, results_dir, run_id, prog)
        cells = [c for c in runner.cells() if only is None or only in c.id]
        if not cells:
            raise RunError(f"{path}: no cell id contains {only!r}")
        prog.start_run(len(cells))
        records: list[CellRecord] = []
        failures: list[str] = []
        with runner:
            for record in iter_run(runner, cells):
                records.append(record)
                failures.extend(runner.check_gates(record))
                if fail_fast and (record.status == "error" or failures):
                    break
        return RunResult(runner.run_dir, records, failures)
