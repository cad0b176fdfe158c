"""The run's endpoints, up for the whole run: reference servers and defense proxies started on
loopback, remote vendors reached through the SDK clients, the run-local API keys, and what
each endpoint serves for each task.

A defended endpoint is controlled through the serving layer's public interface (its
pipeline: reset between cells, its defense stack); the fleet never reads a server's internals.
"""

from __future__ import annotations

import logging
import os
import secrets
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extractbench.config.scenario import ReferenceEndpoint, RemoteEndpoint, Scenario, missing_keys
from extractbench.endpoints.clients import Endpoint
from extractbench.errors import ExtractbenchError
from extractbench.measure.tasks import TaskBank
from extractbench.secret import Secret
from extractbench.tasks import Task

if TYPE_CHECKING:
    from extractbench.defenses import DefenseStack
    from extractbench.reference.served import ServedModel
    from extractbench.serving.pipeline import Pipeline

__all__ = ["BENIGN_EVAL_KEYS", "Fleet", "Keys", "Live", "RunError"]

BENIGN_EVAL_KEYS = 10
"""Keys the held-out prompts are spread over when measuring ``defended_score``."""

KeyPair = tuple[str, str]
"""(key id, API key): the id is what logs show; the key is never logged."""

log = logging.getLogger("extractbench.measure")


class RunError(ExtractbenchError):
    """A run that cannot start or go on; the message is one line for the user."""


def _key(key_id: str) -> KeyPair:
    return key_id, Secret(f"sk-eb-{key_id}-{secrets.token_hex(12)}")


@dataclass
class Keys:
    """The run-local keys every loopback server accepts (minted fresh for each run)."""

    attacker: list[KeyPair]
    evaluator: KeyPair
    benign: list[KeyPair]
    benign_eval: list[KeyPair]
    cohort_of: dict[str, str] = field(default_factory=dict)
    """Benign key id -> its cohort's name (``""``: the scenario's single cohort)."""

    @classmethod
    def mint(cls, n_attacker: int, cohorts: dict[str, int] | int) -> Keys:
        """``cohorts``: users per cohort name; keys ``benign-<i>`` for the unnamed cohort
        ``""`` (or a plain count), ``benign-<cohort>-<i>`` for a named one."""
        sizes = {"": cohorts} if isinstance(cohorts, int) else cohorts
        cohort_of = {(f"benign-{name}-{i}" if name else f"benign-{i}"): name
                     for name, n in sizes.items() for i in range(n)}
        return cls(attacker=[_key(f"attacker-{i}") for i in range(n_attacker)],
                   evaluator=_key("evaluator"), benign=[_key(kid) for kid in cohort_of],
                   benign_eval=[_key(f"benign-eval-{i}") for i in range(BENIGN_EVAL_KEYS)],
                   cohort_of=cohort_of)

    def by_secret(self) -> dict[str, str]:
        """API key -> key id, for a loopback server."""
        return {key: kid for kid, key in [*self.attacker, self.evaluator, *self.benign,
                                          *self.benign_eval]}


@dataclass
class Live:
    """A reachable endpoint: where to send, with which keys; ``pipeline`` when defended."""

    endpoint: Endpoint
    attacker_keys: list[KeyPair]
    eval_key: KeyPair
    prices: Any
    rpm: float | None = None
    tpm: float | None = None
    pipeline: Pipeline | None = field(default=None, repr=False)
    simulated: bool = False
    """Its defenses run on the campaign's simulated clock (a reference endpoint)."""


class Fleet:
    """Starts and holds a scenario's endpoints; closed with the run's ``ExitStack``."""

    def __init__(self, sc: Scenario, path: Path, run_dir: Path, tasks: TaskBank,
                 stack: ExitStack) -> None:
        self.sc, self.path, self.run_dir, self.tasks = sc, path, run_dir, tasks
        self._stack = stack
        n_attacker = max(a.keys for a in sc.attacks.values())
        self.keys = Keys.mint(n_attacker, {name: c.users
                                           for name, c in sc.benign_traffic.plan().items()})
        self.live: dict[str, Live] = {}
        self.upstream: dict[str, Live] = {}
        """The undefended upstream of each endpoint (the teacher's score comes from it)."""
        self.skipped: dict[str, str] = {}
        """Endpoint -> why its cells are skipped (a missing API key)."""
        self.served: dict[str, ServedModel] = {}
        self._held_out: list[Any] | None = None

    # -- what an endpoint serves ------------------------------------------------------------

    def model_for(self, endpoint: str, task_key: str) -> str:
        """The model a cell queries: the endpoint's, or the task family's reference teacher."""
        ep = self.sc.endpoints[endpoint]
        if ep.model is not None:
            return ep.model
        return self.tasks.reference_model(task_key)

    def reference_models(self, ep: ReferenceEndpoint) -> list[str]:
        """Models a reference endpoint serves: its `model`, or each task's own teacher."""
        if ep.model is not None:
            return [ep.model]
        return sorted({self.tasks.reference_model(t) for t in self.sc.tasks})

    def answer_tokens(self, endpoint: str, task: Task) -> int:
        """Output tokens allowed per answer: the task's, unless the endpoint overrides it."""
        ep = self.sc.endpoints[endpoint]
        if isinstance(ep, RemoteEndpoint) and ep.answer_tokens is not None:
            return ep.answer_tokens
        return task.max_answer_tokens

    def endpoint_for(self, live: Live, endpoint: str, task_key: str) -> Endpoint:
        """``live``'s endpoint, asking for the model the cell's task needs."""
        return live.endpoint.model_copy(update={"model": self.model_for(endpoint, task_key)})

    def teacher_model(self, endpoint: str, task_key: str) -> Any:
        """The reference teacher (a TinyLM) behind ``endpoint`` for ``task_key``."""
        return self.served[self.model_for(endpoint, task_key)].model

    # -- defended endpoints -----------------------------------------------------------------

    def fresh_defenses(self, endpoint: str, label: str) -> Path | None:
        """Give a defended endpoint fresh per-key state and its own audit file ``label``."""
        from extractbench.defenses import AuditLog

        pipeline = self.live[endpoint].pipeline
        if pipeline is None:
            return None
        path = self.run_dir / "audit" / f"{label}.jsonl"
        pipeline.reset(AuditLog(path))
        return path

    def defenses(self, endpoint: str) -> list[Any]:
        """The defense objects of ``endpoint``'s stack (empty when undefended)."""
        pipeline = self.live[endpoint].pipeline
        return list(pipeline.stack.defenses) if pipeline is not None else []

    # -- start ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every endpoint (reference servers, proxies) and check remote ones."""
        missing = missing_keys(self.sc)
        for name, ep in self.sc.endpoints.items():
            if isinstance(ep, RemoteEndpoint):
                if name in missing:
                    self.skipped[name] = (f"environment variable {ep.api_key_env} is not set "
                                          f"(export it to run endpoint {name!r})")
                    continue
                self._start_remote(name, ep)
            else:
                self._start_reference(name, ep)
        # defended reference endpoints are scored against the same models undefended
        for name, ep in self.sc.endpoints.items():
            if isinstance(ep, ReferenceEndpoint) and name not in self.upstream:
                self._undefended_twin(name, ep)

    def _start_remote(self, name: str, ep: RemoteEndpoint) -> None:
        secret = Secret(os.environ[ep.api_key_env])
        direct = Endpoint(api=ep.api, base_url=ep.base_url, model=ep.model,
                          timeout_s=ep.timeout_s, sampling_params=ep.sampling_params,
                          max_tokens_param=ep.max_tokens_param, stream=ep.stream)
        n = len(self.keys.attacker)
        live = Live(direct, attacker_keys=[(f"attacker-{i}", secret) for i in range(n)],
                    eval_key=("evaluator", secret), prices=ep.prices,
                    rpm=ep.rate_limits.requests_per_minute,
                    tpm=ep.rate_limits.tokens_per_minute)
        preflight(name, ep.base_url)
        self.upstream[name] = live
        self.live[name] = self._proxied(name, ep, live, secret) if ep.defenses else live

    def _proxied(self, name: str, ep: RemoteEndpoint, direct: Live, secret: str) -> Live:
        """The defense proxy in front of a remote endpoint, on loopback: the attack, the benign
        users and the defended evaluation go through it with run-local keys; the proxy calls
        the upstream with the real key (never forwarded from a client, never logged). The
        undefended figures (teacher score) come from the upstream directly."""
        from extractbench.serving import RunningServer, create_proxy_app, pipeline_of

        stack = self._defense_stack(name, ep)
        assert stack is not None
        try:
            app = create_proxy_app(ep.base_url, ep.api, secret, stack, self.keys.by_secret(),
                                   timeout_s=ep.timeout_s)
        except ValueError as exc:
            raise RunError(f"{self.path}: endpoints.{name}.defenses: {exc}") from None
        server = self._stack.enter_context(RunningServer(app))
        base = server.openai_base_url if ep.api == "openai" else server.anthropic_base_url
        return Live(direct.endpoint.model_copy(update={"base_url": base}),
                    attacker_keys=self.keys.attacker, eval_key=self.keys.evaluator,
                    prices=direct.prices, rpm=direct.rpm, tpm=direct.tpm,
                    pipeline=pipeline_of(app))

    def _load_models(self, name: str, names: list[str]) -> None:
        from extractbench.reference.served import ServedModel
        from extractbench.reference.teachers import load_reference

        for m in names:
            if m not in self.served:
                try:
                    self.served[m] = ServedModel(m, load_reference(m))
                except (KeyError, FileNotFoundError) as exc:
                    raise RunError(f"{self.path}: endpoints.{name}.model: {exc.args[0]}"
                                   ) from None

    def _serve(self, ep: ReferenceEndpoint, names: list[str], keys: dict[str, str],
               stack: DefenseStack | None, sim_clock: bool = False) -> tuple[Endpoint, Any]:
        from extractbench.serving import RunningServer, create_app

        app = create_app({m: self.served[m] for m in names}, keys, stack, sim_clock=sim_clock)
        server = self._stack.enter_context(RunningServer(app))
        base = server.openai_base_url if ep.api == "openai" else server.anthropic_base_url
        return Endpoint(api=ep.api, base_url=base, model=names[0], stream=ep.stream), app

    def _start_reference(self, name: str, ep: ReferenceEndpoint) -> None:
        from extractbench.serving import pipeline_of

        names = self.reference_models(ep)
        self._load_models(name, names)
        stack = self._defense_stack(name, ep)
        sim = not self.sc.wall_clock(name)
        endpoint, app = self._serve(ep, names, self.keys.by_secret(), stack, sim_clock=sim)
        self.live[name] = Live(endpoint, attacker_keys=self.keys.attacker,
                               eval_key=self.keys.evaluator, prices=ep.prices,
                               pipeline=pipeline_of(app) if ep.defenses else None,
                               simulated=sim)
        if not ep.defenses:
            self.upstream[name] = self.live[name]

    def _undefended_twin(self, name: str, ep: ReferenceEndpoint) -> None:
        """The undefended upstream of a defended reference endpoint: an undefended endpoint
        of the scenario that serves the same models, or a server of its own."""
        names = self.reference_models(ep)
        same = [n for n, e in self.sc.endpoints.items() if n in self.upstream
                and isinstance(e, ReferenceEndpoint) and e.api == ep.api
                and set(names) <= set(self.reference_models(e))]
        if same:
            self.upstream[name] = self.upstream[same[0]]
            return
        kid, key = self.keys.evaluator
        endpoint, _ = self._serve(ep, names, {key: kid}, None)
        self.upstream[name] = Live(endpoint, attacker_keys=[], eval_key=self.keys.evaluator,
                                   prices=ep.prices)

    def _defense_stack(self, name: str, ep: ReferenceEndpoint | RemoteEndpoint
                       ) -> DefenseStack | None:
        from extractbench.defenses import AuditLog, DefenseConfigError, DefenseStack

        if not ep.defenses:
            return None
        audit = AuditLog(self.run_dir / "audit" / f"{name}.jsonl")
        try:
            stack = DefenseStack.from_specs(ep.defenses, audit,
                                            where=f"endpoints.{name}.defenses")
        except DefenseConfigError as exc:
            raise RunError(f"{self.path}: {exc}") from None
        for defense in stack.defenses:
            exclude = getattr(defense, "exclude_reference", None)
            if callable(exclude):
                dropped = exclude(self.held_out_anywhere)
                log.info("endpoint %s: %s: %d reference prompts dropped (held-out content of "
                         "a cell)", name, defense.name, dropped)
        return stack

    def held_out_anywhere(self, prompt: str) -> bool:
        """Whether ``prompt`` asks about content some cell of the scenario holds out (any
        task, any seed): what no defense's reference set may contain."""
        if self._held_out is None:
            from extractbench.tasks import HeldOutContent

            self._held_out = [HeldOutContent(self.tasks.get(t, seed))
                              for t in self.sc.tasks for seed in self.sc.seeds]
        return any(h.forbids(prompt) is not None for h in self._held_out)


def preflight(name: str, base_url: str) -> None:
    """Fail fast, in one line, when a remote endpoint cannot be reached at all."""
    import httpx

    try:
        httpx.get(base_url, timeout=10.0)
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunError(f"endpoint {name!r} at {base_url} is unreachable ({reason}); "
                       "check base_url and the network") from None
