"""Scenario files: the versioned, validated description of a benchmark grid.

A scenario is YAML read by :func:`extractbench.config.source.read_yaml` (bounded size, depth
and aliases; duplicate keys are errors) into frozen, strict pydantic models with
``extra="forbid"``, so a typo is an error, not a silent default, and ``true`` or ``"5"`` is not
a number. Names follow :data:`extractbench.config.values.NAME_RULE`; numbers are finite. Then
every plugin is built once, the grid is expanded and every gate must select a cell. Problems
are reported one per line as ``FILE: field.path: problem (hint)``; :func:`load_scenario` raises
nothing but :class:`ScenarioError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from extractbench.config.budget import Budget, Prices
from extractbench.config.values import (
    Coordinate,
    Line,
    Name,
    PlainParams,
    Text,
    escape,
    name_problem,
    params_problem,
)
from extractbench.errors import ExtractbenchError

SCHEMA_VERSION = 1
MAX_SPLIT = 100_000
"""Largest split of a task (building the task at validate time must stay quick)."""
MAX_SEED = 2**31 - 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # True == 1, and a Literal[1] would take it
        raise ValueError(f"expected {SCHEMA_VERSION}, got {str(value).lower()}")
    return value


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise ValueError(f"{value!r} is not an http(s) URL (e.g. https://api.openai.com/v1)")
    return value


def _env_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", value):
        raise ValueError(f"{value!r} is not an environment variable name (letters, digits and "
                         "'_', not starting with a digit)")
    return value


Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class DefenseSpec(_Model):
    """One stage of a profile's defense stack."""

    name: Line = Field(description="registered defense name (see `extractbench list defenses`)")
    params: PlainParams = Field(default_factory=dict, description="the defense's parameters")


class RateLimits(_Model):
    """Client-side pacing for a remote endpoint (what the vendor allows your key)."""

    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)


class ReferenceEndpoint(_Model):
    """The embedded reference endpoint: a local HTTP server with a reference teacher."""

    kind: Literal["reference"] = "reference"
    model: Line | None = Field(
        default=None,
        description="reference model to serve; default: each task family's own teacher",
    )
    defenses: list[DefenseSpec] = Field(
        default_factory=list, description="ordered defense stack; empty = undefended"
    )
    api: Literal["openai", "anthropic"] = Field(
        default="openai", description="which SDK the attacker uses against it"
    )
    prices: Prices = Field(default_factory=Prices, description="USD per million tokens and "
                           "per attacker account")
    stream: bool = Field(default=False, description="the attacker's requests stream "
                         "(server-sent events, assembled by the client)")


class RemoteEndpoint(_Model):
    """Any OpenAI-compatible or Anthropic endpoint reached over the network."""

    kind: Literal["remote"] = "remote"
    api: Literal["openai", "anthropic"]
    base_url: Annotated[Line, AfterValidator(_url)] = Field(
        description="e.g. https://api.openai.com/v1")
    model: Line = Field(min_length=1, max_length=256)
    api_key_env: Annotated[str, AfterValidator(_env_name)] = Field(
        description="name of the environment variable holding the key")
    prices: Prices = Field(default_factory=Prices, description="USD per million tokens and "
                           "per attacker account")
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
    timeout_s: float = Field(default=60.0, gt=0, le=3600, description="per request")
    stream: bool = Field(default=False, description="the attacker's requests stream "
                         "(server-sent events, assembled by the client; usage asked for with "
                         "stream_options on OpenAI)")
    defenses: list[DefenseSpec] = Field(
        default_factory=list,
        description="ordered defense stack, applied by the defense proxy the run starts in "
        "front of this endpoint (request- and response-stage defenses only); empty = direct",
    )


Endpoint = Annotated[ReferenceEndpoint | RemoteEndpoint, Field(discriminator="kind")]


class TaskSpec(_Model):
    """A task family instance with its difficulty parameters and split sizes."""

    family: Line = Field(description="registered task family (see `extractbench list tasks`)")
    params: PlainParams = Field(default_factory=dict)
    attack_pool: int = Field(default=5000, gt=0, le=MAX_SPLIT,
                             description="size of the attacker's pool")
    heldout: int = Field(default=300, gt=0, le=MAX_SPLIT,
                         description="held-out items the student is scored on")
    benign: int = Field(default=200, ge=0, le=MAX_SPLIT, description="legitimate users' prompts")


class AttackSpec(_Model):
    name: Line = Field(description="registered attack (see `extractbench list attacks`)")
    params: PlainParams = Field(default_factory=dict)
    concurrency: int = Field(default=8, gt=0, le=256)
    keys: int = Field(default=1, gt=0, le=1000, description="attacker API keys to spread over")
    knows: Literal["nothing", "kind", "params"] = Field(
        default="nothing", description="the threat model: what the attacker knows of the "
        "endpoint's defenses (nothing; their kind, and so their default parameters; their "
        "parameters); an adaptive attack reads it")


class StudentSpec(_Model):
    name: Line = Field(description="registered student (see `extractbench list students`)")
    params: PlainParams = Field(default_factory=dict)


GateCoordinate = Literal["endpoint", "task", "attack", "student", "budget", "seed"]
"""What a gate's ``where:`` can name (the coordinates of a cell)."""


class Gate(_Model):
    """A threshold cells must meet; `where` selects cells by coordinate. With `beats`, a
    cell's metric must exceed that of the same cell (endpoint, task, attack, budget, seed)
    trained with the student named there, e.g. every learned student above `lookup`."""

    metric: Literal["transfer", "student_score", "teacher_score", "fidelity", "base_score"]
    min: float | None = None
    max: float | None = None
    beats: Line | None = Field(
        default=None, description="a student in `students`: the same cell with it scores lower"
    )
    where: dict[GateCoordinate, Coordinate] = Field(
        default_factory=dict,
        description="cell coordinates to match: endpoint, task, attack, student, budget, seed; "
        "each must match a cell of the grid",
    )

    @model_validator(mode="after")
    def _bound(self) -> Gate:
        if self.min is None and self.max is None and self.beats is None:
            raise ValueError("a gate needs min, max or beats")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}, so every cell fails "
                             "(swap them)")
        return self


DirectionMetric = Literal["transfer", "student_score", "fidelity", "utility", "fpr",
                          "harmed_rate"]
"""What a direction compares (a record's figure; ``transfer`` is its point estimate)."""


class Contrast(_Model):
    """The mean of a metric over the cells at ``of`` minus its mean over the cells at
    ``minus`` (each a `where:` of cell coordinates)."""

    of: dict[GateCoordinate, Coordinate] = Field(min_length=1)
    minus: dict[GateCoordinate, Coordinate] | None = Field(
        default=None, description="default: nothing subtracted (the mean at `of` itself)")


class Direction(_Model):
    """A published claim this scenario tests: ``effect`` (minus ``than``, when given) must be
    at least ``min`` and/or at most ``max``. Checked when the run ends, on the seed means;
    the verdict, with the per-seed spread, goes to the run's ``directions.json``."""

    claim: Text = Field(min_length=1, description="the direction in words")
    source: Text = Field(default="", description="who published it, with their figure")
    metric: DirectionMetric = "transfer"
    effect: Contrast
    than: Contrast | None = Field(default=None, description="a second contrast the first "
                                  "must exceed (or stay under)")
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bound(self) -> Direction:
        if self.min is None and self.max is None:
            raise ValueError("a direction needs min or max (what the claim says)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max} (swap them)")
        return self

    def wheres(self) -> list[tuple[str, dict[GateCoordinate, Coordinate]]]:
        """Each ``where`` it reads, with its place (``effect.of``, ...)."""
        out: list[tuple[str, dict[GateCoordinate, Coordinate]]] = []
        for name, contrast in (("effect", self.effect), ("than", self.than)):
            if contrast is None:
                continue
            out.append((f"{name}.of", contrast.of))
            if contrast.minus is not None:
                out.append((f"{name}.minus", contrast.minus))
        return out


class Grid(_Model):
    """A sub-grid: names chosen from the scenario's sections (omitted = all of that section).
    Lets one scenario measure e.g. every family with one attack and every attack on one
    family without paying for the full cross product."""

    endpoints: list[str] | None = Field(default=None, min_length=1)
    tasks: list[str] | None = Field(default=None, min_length=1)
    attacks: list[str] | None = Field(default=None, min_length=1)
    budgets: list[str] | None = Field(default=None, min_length=1,
                                      description="budget labels, e.g. q300")
    students: list[str] | None = Field(default=None, min_length=1)
    seeds: list[int] | None = Field(default=None, min_length=1)


class Ranking(_Model):
    """What a profile must be measured on to be ranked: every listed attack at every listed
    budget (and seed), on each task the board compares. Absent: the leaderboard's default
    (the (attack, budget) pairs measured on the undefended profile of each task; see
    docs/leaderboard.md)."""

    attacks: list[str] = Field(min_length=1, description="attacks in `attacks`")
    budgets: list[str] = Field(min_length=1, description="budget labels, e.g. q1000")
    seeds: list[Seed] | None = Field(
        default=None, min_length=1,
        description="seeds in `seeds`; default: every seed any profile was measured on there",
    )
    tasks: list[str] | None = Field(
        default=None, min_length=1,
        description="tasks in `tasks` the board ranks on (the overall table covers these "
        "only; the others are measured, plotted and listed, not ranked); default: every task",
    )


DAY_S = 86400.0
WALL_PACING_MAX_S = 60.0
"""Longest mean gap between a benign user's requests on the wall clock (it is waited)."""


class Clock(_Model):
    """The clock reference endpoints run their defenses on (remote endpoints: always the wall
    clock). ``simulated``: every request carries its sender's simulated time, the attacker's
    keys send one request at a time each, waits cost no wall-clock time, and the same seed
    gives the same records (``extractbench.campaign.simclock``)."""

    mode: Literal["simulated", "wall"] = Field(
        default="simulated", description="simulated (default) or wall")
    request_s: float = Field(default=1.0, gt=0, le=3600, description="simulated seconds one "
                             "request takes; a key sends `concurrency / keys` at once")
    max_wait_s: float = Field(default=7 * DAY_S, ge=0, le=365 * DAY_S, description="the "
                              "longest quota reset the attacker waits out, simulated seconds")


class Cohort(_Model):
    """One kind of legitimate user: how many, how often, how heavy, how bursty."""

    users: int = Field(gt=0, le=1000, description="benign API keys of this cohort")
    pacing_s: float = Field(default=0.25, gt=0, le=7 * DAY_S, description="mean gap between "
                            "one user's requests, seconds (exponential; at most 60 on the wall "
                            "clock)")
    min_queries_per_user: int = Field(
        default=5, ge=0, le=100_000,
        description="each user keeps going until it has sent this many, even after the attack "
        "ends: a heavy user sends as many per key as the attacker does")
    burst: int = Field(
        default=1, ge=1, le=1000,
        description="requests a user sends back to back before its next gap (whose mean is "
        "then burst x pacing_s, so the mean rate stays 1 / pacing_s)")
    prompts: Literal["matched", "customer"] = Field(
        default="matched", description="matched: the task's benign prompts worded as the "
        "attack pool words them (what no content test can tell from an attack); customer: "
        "each user opens every request its own way, in wordings no shipped attack sends; "
        "on a task whose teacher does not read past a greeting (of the shipped families, "
        "all but classification) the users send matched prompts, and the record's cohort "
        "figures say which they sent")
    focus: int | None = Field(
        default=None, ge=1, le=100_000, description="each user asks about only this many of "
        "the benign items, its own, again and again (a customer with a few products); "
        "default: the whole benign split")
    mix: dict[Name, Annotated[float, Field(gt=0, lt=1)]] | None = Field(
        default=None, description="other tasks (keys of `tasks`) this cohort also asks about, "
        "each with its share of the user's requests (the rest ask about the cell's own task), "
        "sent to the endpoint's model for that task; e.g. {arithmetic: 0.25}. A share "
        "naming the cell's own task counts as its own. Their answers are scored against each "
        "task's ground truth, and each mixed task's utility is gated like the cohort's")

    @model_validator(mode="after")
    def _shares(self) -> Cohort:
        if self.mix is not None and sum(self.mix.values()) >= 1:
            raise ValueError("mix: the shares add up to 1 or more; leave some of the "
                             "requests for the cell's own task")
        return self


class BenignTraffic(_Model):
    """The legitimate users every defended cell runs alongside the attack: one cohort from
    ``users``, ``pacing_s`` and ``min_queries_per_user``, or the named ``cohorts``."""

    users: int = Field(default=4, gt=0, le=64, description="benign API keys")
    pacing_s: float = Field(default=0.25, gt=0, le=7 * DAY_S, description="mean gap between "
                            "one user's requests, seconds (exponential; at most 60 on the wall "
                            "clock)")
    min_queries_per_user: int = Field(
        default=5, ge=0, le=100_000,
        description="each user keeps going until it has sent this many, even after the attack "
        "ends; raise it past a detector's min_queries to measure false positives on heavy "
        "legitimate users",
    )
    cohorts: dict[Name, Cohort] | None = Field(
        default=None, min_length=1, description="named cohorts (e.g. light, heavy, bursty) "
        "instead of the one above; keys benign-<cohort>-<i>, figures per cohort in the record")

    @model_validator(mode="after")
    def _one_shape(self) -> BenignTraffic:
        if self.cohorts is not None and self.model_fields_set & {
                "users", "pacing_s", "min_queries_per_user"}:
            raise ValueError("give users/pacing_s/min_queries_per_user or "
                             "cohorts, not both (each cohort has its own)")
        if self.cohorts is not None and "eval" in self.cohorts:
            raise ValueError("cohorts: 'eval' is reserved (the held-out "
                             "evaluation's benign-eval-* keys); rename the cohort")
        if self.cohorts is not None and sum(c.users for c in self.cohorts.values()) > 1000:
            raise ValueError("cohorts: at most 1000 users in all")
        return self

    def plan(self) -> dict[str, Cohort]:
        """The cohorts to run, by name (``""``: the single cohort of the plain fields)."""
        if self.cohorts is not None:
            return dict(self.cohorts)
        return {"": Cohort(users=self.users, pacing_s=self.pacing_s,
                           min_queries_per_user=self.min_queries_per_user)}


class Scenario(_Model):
    """A benchmark grid: every endpoint x task x attack x budget x student x seed is a cell."""

    version: Annotated[Literal[1], BeforeValidator(_not_bool)] = Field(
        description="scenario schema version (currently 1)")
    name: Name = Field(description="part of the run's directory name")
    description: Text = ""
    endpoints: dict[Name, Endpoint] = Field(min_length=1)
    tasks: dict[Name, TaskSpec] = Field(min_length=1)
    attacks: dict[Name, AttackSpec] = Field(min_length=1)
    budgets: list[Budget] = Field(min_length=1)
    students: dict[Name, StudentSpec] = Field(min_length=1)
    seeds: list[Seed] = Field(default=[0], min_length=1)
    grids: list[Grid] | None = Field(
        default=None, min_length=1,
        description="union of sub-grids to run; default: the full cross product",
    )
    gates: list[Gate] = Field(default_factory=list)
    directions: list[Direction] = Field(
        default_factory=list, description="published claims the run tests (see Direction)")
    benign_traffic: BenignTraffic = Field(default_factory=BenignTraffic)
    clock: Clock = Field(default_factory=Clock)
    max_usd: float | None = Field(
        default=None, gt=0, description="refuse to start when the worst-case cost exceeds this"
    )
    ranking: Ranking | None = Field(
        default=None, description="the attacks and budgets a profile must be measured on to "
        "be ranked; default: those measured on the undefended profile of each task",
    )


    @model_validator(mode="after")
    def _grid_names(self) -> Scenario:
        labels = [b.label() for b in self.budgets]
        if len(set(labels)) != len(labels):
            raise ValueError("budgets: two budgets have the same label; remove the duplicate")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds: a seed is listed twice; remove the duplicate")
        for section in ("endpoints", "tasks", "attacks", "students"):
            seen: dict[str, str] = {}
            for key in getattr(self, section):
                other = seen.setdefault(key.lower(), key)
                if other != key:
                    raise ValueError(f"{section}: {other!r} and {key!r} differ only in case, so "
                                     "their files would collide on macOS and Windows; rename one")
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
        self._accounts_cover_keys(labels)
        self._wall_pacing()
        for name, cohort in (self.benign_traffic.cohorts or {}).items():
            for task in cohort.mix or {}:
                if task not in self.tasks:
                    raise ValueError(f"benign_traffic.cohorts.{name}.mix: {task!r} is not in "
                                     f"tasks (known: {', '.join(self.tasks)})")
        if self.ranking is not None:
            self._ranking_names(self.ranking, labels)
        for i, gate in enumerate(self.gates):
            if gate.beats is not None and gate.beats not in self.students:
                raise ValueError(
                    f"gates.{i}.beats: {gate.beats!r} is not in students "
                    f"(known: {', '.join(self.students)})"
                )
        return self

    def wall_clock(self, endpoint: str) -> bool:
        """True when ``endpoint``'s defenses run on the wall clock (a remote endpoint, or
        ``clock.mode: wall``)."""
        return (self.clock.mode == "wall"
                or not isinstance(self.endpoints[endpoint], ReferenceEndpoint))

    def _wall_pacing(self) -> None:
        """Benign users on the wall clock really wait their gaps: at most a minute."""
        walled = [n for n, ep in self.endpoints.items() if ep.defenses and self.wall_clock(n)]
        if not walled:
            return
        bt = self.benign_traffic
        paced = ({f"cohorts.{n}.pacing_s": c.pacing_s for n, c in bt.cohorts.items()}
                 if bt.cohorts is not None else {"pacing_s": bt.pacing_s})
        for where, pacing in paced.items():
            if pacing > WALL_PACING_MAX_S:
                raise ValueError(
                    f"benign_traffic.{where}: {pacing:g} s is longer than the "
                    f"{WALL_PACING_MAX_S:g} s a benign user may wait on the wall clock "
                    f"(endpoint {walled[0]!r} runs on it); lower it, or use clock.mode: "
                    "simulated with reference endpoints")

    def _accounts_cover_keys(self, labels: list[str]) -> None:
        """Every attack the grid pairs with a budget that limits accounts uses no more keys
        than it allows."""
        by_label = dict(zip(labels, self.budgets, strict=True))
        for g in self.grids or [Grid()]:
            for attack in g.attacks or list(self.attacks):
                keys = self.attacks[attack].keys
                for label in g.budgets or labels:
                    budget, i = by_label[label], labels.index(label)
                    if budget.accounts is not None and keys > budget.accounts:
                        raise ValueError(
                            f"budgets.{i}.accounts: {label} allows {budget.accounts} accounts "
                            f"but attack {attack!r} uses {keys} keys (attacks.{attack}.keys); "
                            "raise the limit, lower the keys, or keep them apart with grids:")
                    for name in g.endpoints or list(self.endpoints):
                        cost = self.endpoints[name].prices.accounts_cost(keys)
                        if budget.usd is not None and cost >= budget.usd:
                            raise ValueError(
                                f"budgets.{i}.usd: ${budget.usd:g} leaves nothing for queries "
                                f"once attack {attack!r} has paid for its {keys} accounts "
                                f"(${cost:g} at endpoints.{name}.prices.account_usd); raise "
                                "the budget or lower the keys")

    def _ranking_names(self, ranking: Ranking, labels: list[str]) -> None:
        for section, names, known in (("attacks", ranking.attacks, list(self.attacks)),
                                      ("budgets", ranking.budgets, labels),
                                      ("seeds", ranking.seeds or [], self.seeds),
                                      ("tasks", ranking.tasks or [], list(self.tasks))):
            for name in names:
                if name not in known:
                    raise ValueError(f"ranking.{section}: {name!r} is not in {section} "
                                     f"(known: {', '.join(str(k) for k in known)})")
            if len(set(names)) != len(names):
                raise ValueError(f"ranking.{section}: an entry is listed twice; remove the "
                                 "duplicate")


class ScenarioError(ExtractbenchError):
    """A scenario file that cannot be used; ``lines`` are one-line problems."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _part(p: int | str) -> str:
    text = str(p)
    return text if isinstance(p, int) or name_problem(text) is None else repr(text)


def _loc(loc: tuple[int | str, ...]) -> str:
    parts = list(loc)
    if len(parts) > 2 and parts[0] == "endpoints" and parts[2] in ("reference", "remote"):
        del parts[2]  # the discriminated union's tag
    return ".".join(_part(p) for p in parts if p != "[key]") or "(top level)"


_HINTS = {
    "extra_forbidden": "remove it or check the spelling; `extractbench schema` lists fields",
    "missing": "add it",
    "greater_than": "use a positive value",
    "greater_than_equal": "use a larger value",
    "less_than_equal": "use a smaller value",
    "literal_error": "use one of the allowed values",
    "union_tag_invalid": "kind must be 'reference' or 'remote'",
    "union_tag_not_found": "add kind: reference or kind: remote",
    "too_short": "add at least one entry",
    "string_type": "write text; quote it if YAML reads it as a number, date or true/false",
    "int_type": "write a whole number without quotes",
    "float_type": "write a number without quotes",
    "bool_type": "write true or false",
    "finite_number": "use a finite number",
    "dict_type": "write a mapping of key: value",
    "list_type": "write a list, e.g. [a, b]",
    "model_type": "write a mapping of fields",
    "model_attributes_type": "write a mapping of fields",
}


def _format_errors(file: str, err: ValidationError) -> list[str]:
    lines = []
    for e in err.errors():
        hint = _HINTS.get(e["type"], "")
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{file}: {_loc(e['loc'])}: {msg}" + (f" ({hint})" if hint else ""))
    return lines


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raises :class:`ScenarioError` with one line each,
    and nothing else (an unforeseen failure is one line asking for a report)."""
    name = str(path)
    try:
        return _load(path, name)
    except ScenarioError as exc:
        lines = list(dict.fromkeys(escape(line) for line in exc.lines))
        raise ScenarioError(lines) from None
    except Exception as exc:  # a bug here must not become a traceback for the user
        raise ScenarioError([escape(f"{name}: internal error while validating: "
                                    f"{type(exc).__name__}: {exc} (please report it)")]) from None


def _load(path: str | Path, name: str) -> Scenario:
    from extractbench.config.source import SourceError, read_yaml

    try:
        data = read_yaml(path)
    except SourceError as exc:
        raise ScenarioError(exc.lines) from None
    if not isinstance(data, dict):
        raise ScenarioError(
            [f"{name}: (top level): expected a mapping of fields (see scenarios/ for examples)"]
        )
    names = _plugin_problems(data, name)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_errors(name, exc) + names) from None
    problems = names or (_param_problems(scenario, name) + _model_problems(scenario, name)
                         + [f"{name}: {p}" for p in _plan_problems(scenario)])
    if problems:
        raise ScenarioError(problems)
    return scenario


def _plan_problems(scenario: Scenario) -> list[str]:
    """The grid is not empty and not huge, and every gate selects a cell of it."""
    from extractbench.config.directions import direction_problems
    from extractbench.config.gates import gate_problems
    from extractbench.config.plan import grid, grid_problems

    cells = grid(scenario)
    return (grid_problems(scenario) or gate_problems(scenario.gates, cells)
            + direction_problems(scenario.directions, cells))


def _model_problems(scenario: Scenario, file: str) -> list[str]:
    """Reference endpoints name a shipped reference model (``extractbench list models``)."""
    weights = Path(__file__).resolve().parents[1] / "reference" / "weights"
    known = sorted(p.stem for p in weights.glob("*.safetensors"))
    return [f"{file}: endpoints.{key}.model: unknown reference model {ep.model!r} "
            f"(known: {', '.join(known)})"
            for key, ep in scenario.endpoints.items()
            if isinstance(ep, ReferenceEndpoint) and ep.model is not None
            and ep.model not in known]


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
            if isinstance(params, dict) and params_problem(params) is None:
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
                if isinstance(params, dict) and params_problem(params) is None:
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
        except Exception as exc:  # a plugin's own check that is not a DefenseConfigError
            out.append(f"{file}: endpoints.{key}.defenses: {_failure(exc)} "
                       "(see `extractbench list defenses`)")
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
        except Exception as exc:  # whatever the family raises for parameters it cannot use
            out.append(f"{file}: tasks.{key}.params: {_failure(exc)} "
                       "(see `extractbench list tasks`)")
    for section, specs, reg in (("attacks", scenario.attacks, ATTACKS),
                                ("students", scenario.students, STUDENTS)):
        for key, spec in specs.items():
            try:
                reg.get(spec.name)(**spec.params)
            except Exception as exc:  # whatever the plugin raises for parameters it cannot use
                out.append(f"{file}: {section}.{key}.params: {_failure(exc)} "
                           f"(see `extractbench list {section}`)")
    return out


def _failure(exc: Exception) -> str:
    """A plugin's exception as a message: its first line, after its type unless it is a
    ``ValueError`` or ``TypeError`` (the plugins' way of saying a parameter is wrong)."""
    text = str(exc).split("\n")[0] or type(exc).__name__
    return text if isinstance(exc, ValueError | TypeError) else f"{type(exc).__name__}: {text}"


def missing_keys(scenario: Scenario) -> dict[str, str]:
    """Remote endpoints whose API-key variable is unset: endpoint name -> variable name."""
    return {
        name: ep.api_key_env
        for name, ep in scenario.endpoints.items()
        if isinstance(ep, RemoteEndpoint) and not os.environ.get(ep.api_key_env)
    }


def scenario_hash(scenario: Scenario) -> str:
    """sha256 of the scenario's canonical JSON (field order and YAML layout do not matter)."""
    data = scenario.model_dump(mode="json")
    if data.get("ranking") is None:  # added later: absent, the hash is what it always was
        data.pop("ranking", None)
    elif data["ranking"].get("tasks") is None:  # likewise ranking.tasks
        data["ranking"].pop("tasks", None)
    if not data.get("directions"):  # likewise directions
        data.pop("directions", None)
    for ep in data.get("endpoints", {}).values():  # likewise an endpoint's stream: false
        if ep.get("stream") is False:
            ep.pop("stream")
        prices = ep.get("prices") or {}
        if prices.get("account_usd") == 0:  # and a free account
            prices.pop("account_usd")
    if data.get("clock") == Clock().model_dump(mode="json"):  # and the default clock
        data.pop("clock")
    if data.get("benign_traffic", {}).get("cohorts", 0) is None:  # and no cohorts
        data["benign_traffic"].pop("cohorts")
    for cohort in (data.get("benign_traffic", {}).get("cohorts") or {}).values():
        if cohort.get("prompts") == "matched":  # and matched prompts, unfocused
            cohort.pop("prompts")
        if cohort.get("focus") is None:
            cohort.pop("focus", None)
        if cohort.get("mix") is None:
            cohort.pop("mix", None)
    for attack in data.get("attacks", {}).values():  # and an attacker who knows nothing
        if attack.get("knows") == "nothing":
            attack.pop("knows")
    for budget in data.get("budgets", []):  # and a budget without an accounts limit
        if budget.get("accounts") is None:
            budget.pop("accounts", None)
    canon = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def json_schema() -> dict[str, Any]:
    return Scenario.model_json_schema()
