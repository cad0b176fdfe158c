"""Scenario files: the versioned, validated description of a benchmark grid.

A scenario is YAML loaded with ``yaml.safe_load`` into frozen pydantic models with
``extra="forbid"``, so a typo is an error, not a silent default. Problems are reported one per
line as ``FILE: field.path: problem (hint)``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from extractbench.config.budget import Budget, Prices
from extractbench.errors import ExtractbenchError

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DefenseSpec(_Model):
    """One stage of a profile's defense stack."""

    name: str = Field(description="registered defense name (see `extractbench list defenses`)")
    params: dict[str, Any] = Field(default_factory=dict, description="the defense's parameters")


class RateLimits(_Model):
    """Client-side pacing for a remote endpoint (what the vendor allows your key)."""

    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)


class ReferenceEndpoint(_Model):
    """The embedded reference endpoint: a local HTTP server with a reference teacher."""

    kind: Literal["reference"] = "reference"
    model: str | None = Field(
        default=None,
        description="reference model to serve; default: each task family's own teacher",
    )
    defenses: list[DefenseSpec] = Field(
        default_factory=list, description="ordered defense stack; empty = undefended"
    )
    api: Literal["openai", "anthropic"] = Field(
        default="openai", description="which SDK the attacker uses against it"
    )
    prices: Prices = Field(default_factory=Prices, description="USD per million tokens")


class RemoteEndpoint(_Model):
    """Any OpenAI-compatible or Anthropic endpoint reached over the network."""

    kind: Literal["remote"] = "remote"
    api: Literal["openai", "anthropic"]
    base_url: str = Field(description="e.g. https://api.openai.com/v1")
    model: str
    api_key_env: str = Field(description="name of the environment variable holding the key")
    prices: Prices = Field(default_factory=Prices, description="USD per million tokens")
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = Field(
        default="max_tokens",
        description="the request field the model accepts (current OpenAI models need "
        "max_completion_tokens)",
    )
    sampling_params: bool = Field(
        default=True, description="send temperature/top_p/seed; off for models that reject them"
    )
    answer_tokens: int | None = Field(
        default=None, gt=0,
        description="max output tokens per answer, overriding the task's answer length "
        "(reasoning models spend tokens before answering)",
    )
    timeout_s: float = Field(default=60.0, gt=0, description="per request")
    defenses: list[DefenseSpec] = Field(
        default_factory=list,
        description="ordered defense stack, applied by the defense proxy the run starts in "
        "front of this endpoint (request- and response-stage defenses only); empty = direct",
    )


Endpoint = Annotated[ReferenceEndpoint | RemoteEndpoint, Field(discriminator="kind")]


class TaskSpec(_Model):
    """A task family instance with its difficulty parameters and split sizes."""

    family: str = Field(description="registered task family (see `extractbench list tasks`)")
    params: dict[str, Any] = Field(default_factory=dict)
    attack_pool: int = Field(default=5000, gt=0, description="size of the attacker's pool")
    heldout: int = Field(default=300, gt=0, description="held-out items the student is scored on")
    benign: int = Field(default=200, ge=0, description="legitimate users' prompts")


class AttackSpec(_Model):
    name: str = Field(description="registered attack (see `extractbench list attacks`)")
    params: dict[str, Any] = Field(default_factory=dict)
    concurrency: int = Field(default=8, gt=0, le=256)
    keys: int = Field(default=1, gt=0, le=1000, description="attacker API keys to spread over")


class StudentSpec(_Model):
    name: str = Field(description="registered student (see `extractbench list students`)")
    params: dict[str, Any] = Field(default_factory=dict)


class Gate(_Model):
    """A threshold cells must meet; `where` selects cells by coordinate. With `beats`, a
    cell's metric must exceed that of the same cell (endpoint, task, attack, budget, seed)
    trained with the student named there, e.g. every learned student above `lookup`."""

    metric: Literal["transfer", "student_score", "teacher_score", "fidelity", "base_score"]
    min: float | None = None
    max: float | None = None
    beats: str | None = Field(
        default=None, description="a student in `students`: the same cell with it scores lower"
    )
    where: dict[str, str | int | float] = Field(
        default_factory=dict,
        description="cell coordinates to match: endpoint, task, attack, student, budget, seed",
    )

    @model_validator(mode="after")
    def _bound(self) -> Gate:
        if self.min is None and self.max is None and self.beats is None:
            raise ValueError("a gate needs min, max or beats")
        return self


class Grid(_Model):
    """A sub-grid: names chosen from the scenario's sections (omitted = all of that section).
    Lets one scenario measure e.g. every family with one attack and every attack on one
    family without paying for the full cross product."""

    endpoints: list[str] | None = None
    tasks: list[str] | None = None
    attacks: list[str] | None = None
    budgets: list[str] | None = Field(default=None, description="budget labels, e.g. q300")
    students: list[str] | None = None
    seeds: list[int] | None = None


class BenignTraffic(_Model):
    """The legitimate users every defended cell runs alongside the attack."""

    users: int = Field(default=4, gt=0, le=64, description="benign API keys")
    pacing_s: float = Field(default=0.25, gt=0, description="mean gap between one user's "
                            "requests, seconds (exponential)")
    min_queries_per_user: int = Field(
        default=5, ge=0, le=100_000,
        description="each user keeps going until it has sent this many, even after the attack "
        "ends; raise it past a detector's min_queries to measure false positives on heavy "
        "legitimate users",
    )


class Scenario(_Model):
    """A benchmark grid: every endpoint x task x attack x budget x student x seed is a cell."""

    version: Literal[1] = Field(description="scenario schema version (currently 1)")
    name: str
    description: str = ""
    endpoints: dict[str, Endpoint] = Field(min_length=1)
    tasks: dict[str, TaskSpec] = Field(min_length=1)
    attacks: dict[str, AttackSpec] = Field(min_length=1)
    budgets: list[Budget] = Field(min_length=1)
    students: dict[str, StudentSpec] = Field(min_length=1)
    seeds: list[int] = Field(default=[0], min_length=1)
    grids: list[Grid] | None = Field(
        default=None, description="union of sub-grids to run; default: the full cross product"
    )
    gates: list[Gate] = Field(default_factory=list)
    benign_traffic: BenignTraffic = Field(default_factory=BenignTraffic)
    max_usd: float | None = Field(
        default=None, gt=0, description="refuse to start when the worst-case cost exceeds this"
    )


    @model_validator(mode="after")
    def _grid_names(self) -> Scenario:
        labels = [b.label() for b in self.budgets]
        if len(set(labels)) != len(labels):
            raise ValueError("budgets: two budgets have the same label; remove the duplicate")
        for i, g in enumerate(self.grids or []):
            for section, known in (("endpoints", self.endpoints), ("tasks", self.tasks),
                                   ("attacks", self.attacks), ("students", self.students),
                                   ("budgets", labels), ("seeds", self.seeds)):
                for name in getattr(g, section) or []:
                    if name not in known:
                        raise ValueError(
                            f"grids.{i}.{section}: {name!r} is not in {section} "
                            f"(known: {', '.join(str(k) for k in known)})"
                        )
        for i, gate in enumerate(self.gates):
            if gate.beats is not None and gate.beats not in self.students:
                raise ValueError(
                    f"gates.{i}.beats: {gate.beats!r} is not in students "
                    f"(known: {', '.join(self.students)})"
                )
        return self


class ScenarioError(ExtractbenchError):
    """A scenario file that cannot be used; ``lines`` are one-line problems."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _loc(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("reference", "remote") or not isinstance(p, str)]
    return ".".join(parts) or "(top level)"


_HINTS = {
    "extra_forbidden": "remove it or check the spelling; `extractbench schema` lists fields",
    "missing": "add it",
    "greater_than": "use a positive value",
    "greater_than_equal": "use a larger value",
    "literal_error": "use one of the allowed values",
    "union_tag_invalid": "kind must be 'reference' or 'remote'",
    "too_short": "add at least one entry",
}


def _format_errors(file: str, err: ValidationError) -> list[str]:
    lines = []
    for e in err.errors():
        hint = _HINTS.get(e["type"], "")
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{file}: {_loc(e['loc'])}: {msg}" + (f" ({hint})" if hint else ""))
    return lines


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raises :class:`ScenarioError` with one line each."""
    p = Path(path)
    name = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"{name}: cannot read file: {exc.strerror} (check the path)"
        raise ScenarioError([msg]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = getattr(exc, "problem", None) or str(exc).split("\n")[0]
        msg = f"{name}: {where}: malformed YAML: {problem} (fix the syntax)"
        raise ScenarioError([msg]) from None
    if not isinstance(data, dict):
        raise ScenarioError(
            [f"{name}: (top level): expected a mapping of fields (see scenarios/ for examples)"]
        )
    names = _plugin_problems(data, name)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_errors(name, exc) + names) from None
    problems = names or _param_problems(scenario, name)
    if problems:
        raise ScenarioError(problems)
    return scenario


def _plugin_problems(data: dict[str, Any], file: str) -> list[str]:
    """Names no registry holds, and parameters the named plugin does not take or of the wrong
    type (one line each, ``FILE: attacks.rp.params.batchh: unknown parameter (...)``), read
    from the raw mapping so they are reported together with schema problems."""
    from extractbench.attacks import ATTACKS
    from extractbench.defenses import DEFENSES
    from extractbench.registry import Registry, UnknownNameError
    from extractbench.students import STUDENTS
    from extractbench.tasks import TASKS

    out: list[str] = []
    sections: list[tuple[Registry[Any], str, str]] = [
        (TASKS, "tasks", "family"), (ATTACKS, "attacks", "name"), (STUDENTS, "students", "name"),
    ]
    for reg, section, attr in sections:
        specs = data.get(section)
        if not isinstance(specs, dict):
            continue
        for key, spec in specs.items():
            name = spec.get(attr) if isinstance(spec, dict) else None
            if not isinstance(name, str):
                continue
            try:
                reg.get(name)
            except UnknownNameError as exc:
                out.append(f"{file}: {section}.{key}.{attr}: {exc} "
                           f"(run `extractbench list {section}`)")
                continue
            params = spec.get("params")
            if isinstance(params, dict):
                out += [f"{file}: {p}" for p in
                        reg.validate_params(name, params, f"{section}.{key}.params")]
    endpoints = data.get("endpoints")
    for key, ep in (endpoints.items() if isinstance(endpoints, dict) else []):
        stack = ep.get("defenses") if isinstance(ep, dict) else None
        for i, d in enumerate(stack if isinstance(stack, list) else []):
            name = d.get("name") if isinstance(d, dict) else None
            if isinstance(name, str):
                try:
                    DEFENSES.get(name)
                except UnknownNameError as exc:
                    out.append(f"{file}: endpoints.{key}.defenses.{i}.name: {exc} "
                               "(run `extractbench list defenses`)")
                    continue
                params = d.get("params")
                if isinstance(params, dict):
                    where = f"endpoints.{key}.defenses.{i}.params"
                    out += [f"{file}: {p}" for p in DEFENSES.validate_params(name, params, where)]
    return out


def _param_problems(scenario: Scenario, file: str) -> list[str]:
    """Parameter values (ranges, combinations), checked by building each task, defense
    stack, attack and student once; names and types were checked by :func:`_plugin_problems`."""
    from extractbench.attacks import ATTACKS
    from extractbench.defenses import DefenseConfigError, DefenseStack
    from extractbench.students import STUDENTS
    from extractbench.tasks import TASKS

    out: list[str] = []
    for key, ep in scenario.endpoints.items():
        if not ep.defenses:
            continue
        try:
            stack = DefenseStack.from_specs(ep.defenses, where=f"endpoints.{key}.defenses")
        except DefenseConfigError as exc:
            out.append(f"{file}: {exc}")
            continue
        if isinstance(ep, RemoteEndpoint):
            names = [d.name for d in ep.defenses]
            for name in stack.sampling_defenses():
                out.append(f"{file}: endpoints.{key}.defenses.{names.index(name)}.name: {name} "
                           "acts at sampling time, which the proxy in front of a remote model "
                           "cannot do (use it on a reference endpoint)")
    for key, task in scenario.tasks.items():
        sizes = {"attack_pool": task.attack_pool, "heldout": task.heldout, "benign": task.benign}
        try:
            TASKS.get(task.family)(0, sizes, **task.params)
        except (TypeError, ValueError) as exc:
            out.append(f"{file}: tasks.{key}.params: {exc} (see `extractbench list tasks`)")
    for section, specs, reg in (("attacks", scenario.attacks, ATTACKS),
                                ("students", scenario.students, STUDENTS)):
        for key, spec in specs.items():
            try:
                reg.get(spec.name)(**spec.params)
            except (TypeError, ValueError) as exc:
                out.append(f"{file}: {section}.{key}.params: {exc} "
                           f"(see `extractbench list {section}`)")
    return out


def missing_keys(scenario: Scenario) -> dict[str, str]:
    """Remote endpoints whose API-key variable is unset: endpoint name -> variable name."""
    return {
        name: ep.api_key_env
        for name, ep in scenario.endpoints.items()
        if isinstance(ep, RemoteEndpoint) and not os.environ.get(ep.api_key_env)
    }


def scenario_hash(scenario: Scenario) -> str:
    """sha256 of the scenario's canonical JSON (field order and YAML layout do not matter)."""
    canon = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def json_schema() -> dict[str, Any]:
    return Scenario.model_json_schema()
