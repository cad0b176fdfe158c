"""What an attack is: a black-box query campaign that acts only through the oracle.

An attack gets an :class:`AttackContext` and spends only through ``ctx.oracle``, which charges
the budget (queries, tokens, dollars), retries rate limits and logs every request and answer
to the harvest. This module also holds what every attack shares:

- :class:`Tracker`: reads each round's outcomes, writes notes on refusals, rate limits and
  blocks, and says when to stop (budget spent, every key refused, or blocked for
  ``patience`` rounds in a row). Attacks never raise on endpoint errors.
- training-prompt notes: an attack that sends a *different* prompt from the one its student
  should learn (a reasoning suffix, a paraphrase) or sends filler that should not be learned
  at all records that with :meth:`AttackContext.train_on`; :func:`train_pairs` applies the
  notes when turning a harvest into training pairs.
- :func:`queries_left`: how many more queries of a given shape the remaining budget covers.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from pydantic import AfterValidator

from extractbench.registry import Registry

if TYPE_CHECKING:
    from extractbench.campaign.oracle import Oracle, QueryOutcome
    from extractbench.logs.harvest import Entry
    from extractbench.students import TrainPair

TRAIN_PROMPT_NOTE = "train_prompt"
"""Harvest note text: ``data = {"index": query index, "train_prompt": str | None}``."""

DEFAULT_REASONING_SUFFIX = "Show your working step by step, then give the final answer."
"""What ``cot-coercion`` appends when the task names no reasoning request of its own."""


MIN_SAMPLED_TEMPERATURE = 0.01
"""Lowest temperature an attack samples at: a temperature is 0 (greedy) or at least this. (The
logits divided by a tiny one, below about 1e-37, overflow float32 and sampling fails; 0.01
leaves a wide margin and no use is lost.)"""


def _greedy_or_sampled(temperature: float) -> float:
    if 0 < temperature < MIN_SAMPLED_TEMPERATURE:
        raise ValueError(f"must be 0 (greedy) or at least {MIN_SAMPLED_TEMPERATURE} "
                         f"(sampled), got {temperature!r}")
    return temperature


Temperature = Annotated[float, AfterValidator(_greedy_or_sampled)]
"""An attack's sampling temperature parameter: 0 (greedy) or 0.01 and up; give the range with
``Field(ge=0, le=2)``."""


def _any_prompt(prompt: str) -> bool:
    return True


@dataclass
class AttackContext:
    """Everything an attack may use. It sees the task's ``attack_pool`` prompts (never their
    answers, never the held-out split) and spends only through ``oracle``.

    The optional fields have safe defaults; the runner fills them when it can.
    """

    oracle: Oracle
    pool: list[str]
    """The task's ``attack_pool`` prompts (unlabelled inputs the attacker may know)."""
    task: str
    """Task family name (e.g. ``arithmetic``)."""
    max_tokens: int
    """The task's answer length in tokens (bare answer, no reasoning)."""
    rng: random.Random
    params: dict[str, Any] = field(default_factory=dict)
    seed_prompts: list[str] = field(default_factory=list)
    """A handful of public example prompts of the task (what an attacker without the pool
    knows: a task description's examples). ``synthetic`` builds its queries from these."""
    reasoning_suffix: str | None = None
    """The task's own words for asking for worked reasoning (appended to a prompt);
    ``None``: attacks use :data:`DEFAULT_REASONING_SUFFIX`."""
    reasoning_max_tokens: int | None = None
    """Room for a worked answer in tokens; ``None``: attacks use 8 x ``max_tokens`` (<= 128)."""
    benign_like: list[str] = field(default_factory=list)
    """Benign-looking filler prompts for ``stealth`` to mix in (empty: its built-in list)."""
    defenses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """What the attacker knows of the endpoint's defenses, by the scenario's threat model (the
    attack's ``knows:``): nothing (empty), their kind (names, empty parameters) or their
    parameters."""
    may_send: Callable[[str], bool] = _any_prompt
    """Held-out hygiene: ``False`` for a prompt the benchmark forbids (a held-out prompt).
    Attacks that generate or rewrite prompts drop those for which it is ``False``; it is a
    filter, never a source of information."""

    def sendable(self, prompts: Iterable[str]) -> list[str]:
        """``prompts`` without those the benchmark forbids (order kept)."""
        return [p for p in prompts if self.may_send(p)]

    def train_on(self, index: int, train_prompt: str | None) -> None:
        """Record that the answer to query ``index`` trains the student on ``train_prompt``
        instead of the prompt sent (``None``: do not train on it at all)."""
        self.oracle.note(TRAIN_PROMPT_NOTE, index=index, train_prompt=train_prompt)

    @property
    def worked_max_tokens(self) -> int:
        """Output room for a worked (reasoning) answer."""
        if self.reasoning_max_tokens is not None:
            return self.reasoning_max_tokens
        return min(128, 8 * self.max_tokens)


class Attack(Protocol):
    """An attack campaign; returns when its budget is spent or it decides to stop."""

    async def run(self, ctx: AttackContext) -> str:
        """Run the campaign; returns a short stop reason for the record."""
        ...


class AttackFactory(Protocol):
    def __call__(self, **params: Any) -> Attack: ...


ATTACKS: Registry[AttackFactory] = Registry(
    "attack",
    (
        "extractbench.attacks.random_pool",
        "extractbench.attacks.synthetic",
        "extractbench.attacks.cot_coercion",
        "extractbench.attacks.logprob_harvest",
        "extractbench.attacks.active",
        "extractbench.attacks.stealth",
        "extractbench.attacks.vote",
    ),
)


# -- stopping and adapting ------------------------------------------------------------------


class Tracker:
    """Reads outcomes round by round; notes what the endpoint did; says when to stop.

    :meth:`update` returns a stop reason, or ``None`` to go on:

    - ``"budget exhausted"`` when the oracle could not afford a query;
    - ``"all keys refused (...)"`` when every key is dead (401/403, or a quota 429);
    - ``"blocked: ..."`` after ``patience`` rounds in a row without a single answer (rate
      limited past the oracle's retries, refused, or failing).
    """

    def __init__(self, ctx: AttackContext, patience: int = 3) -> None:
        if patience < 1:
            raise ValueError("patience must be at least 1")
        self.ctx = ctx
        self.patience = patience
        self.answers = 0
        self.failures: Counter[str] = Counter()
        self.dry_rounds = 0
        self.rate_limited = 0
        """Outcomes that met a 429 (answered after retries, or failed with one)."""
        self._noted: set[str] = set()

    def update(self, outcomes: Sequence[QueryOutcome]) -> str | None:
        answered = [o for o in outcomes if o.ok]
        self.answers += len(answered)
        limited = sum(o.attempts > 1 for o in answered)
        for o in outcomes:
            if not o.ok:
                self.failures[o.error_type] += 1
                self._note_first(o.error_type, o.message, o.status)
                if o.error_type == "rate_limit":
                    limited += 1
        self.rate_limited += limited
        if limited and "slowed" not in self._noted:
            self._noted.add("slowed")
            self.ctx.oracle.note("rate limited: the endpoint asked us to slow down",
                                 outcomes=limited)
        if self.ctx.oracle.dead:
            fatal = self.ctx.oracle.fatal_error
            why = ("quota exhausted" if fatal is not None and fatal.error_type == "quota"
                   else "auth/permission")
            return self.stop(f"all keys refused ({why})")
        if any(not o.ok and o.error_type == "budget" for o in outcomes):
            return "budget exhausted"
        sent = [o for o in outcomes if o.ok or o.attempts > 0]
        if sent and not answered:
            self.dry_rounds += 1
        elif answered:
            self.dry_rounds = 0
        if self.dry_rounds >= self.patience:
            common = self.failures.most_common(1)[0][0] if self.failures else "unknown"
            return self.stop(f"blocked: {self.dry_rounds} rounds without an answer "
                              f"(mostly {common})")
        return None

    def _note_first(self, error_type: str, message: str, status: int | None) -> None:
        if error_type in self._noted or error_type == "budget":
            return
        self._noted.add(error_type)
        self.ctx.oracle.note(f"first {error_type} error", status=status, message=message[:200])

    def stop(self, reason: str) -> str:
        """Note the stop and return ``reason``."""
        self.ctx.oracle.note(f"stopping: {reason}", answers=self.answers,
                             failures=dict(self.failures))
        return reason


def queries_left(ctx: AttackContext, prompt_bytes: int, max_tokens: int) -> int:
    """How many more queries with prompts of ``prompt_bytes`` bytes and ``max_tokens`` of output
    the remaining budget covers at worst (the oracle's reservation bound)."""
    rem = ctx.oracle.remaining()
    worst_in = prompt_bytes + 16
    bounds: list[int] = []
    if rem.queries is not None:
        bounds.append(rem.queries)
    if rem.tokens is not None:
        bounds.append(rem.tokens // (worst_in + max_tokens))
    if rem.usd is not None:
        cost = ctx.oracle.prices.cost(worst_in, max_tokens)
        if cost > 0:
            bounds.append(int(rem.usd / cost))
    return max(0, min(bounds)) if bounds else 1_000_000


def mean_bytes(prompts: Sequence[str]) -> int:
    return int(sum(len(p.encode("utf-8")) for p in prompts) / max(1, len(prompts)))


# -- harvest -> training pairs --------------------------------------------------------------


def train_prompt_map(entries: Iterable[Entry]) -> dict[int, str | None]:
    """Query index -> training prompt (``None``: not a training pair), from the harvest's
    :data:`TRAIN_PROMPT_NOTE` notes (the last note for an index wins)."""
    from extractbench.logs.harvest import NoteEntry

    out: dict[int, str | None] = {}
    for e in entries:
        if isinstance(e, NoteEntry) and e.text == TRAIN_PROMPT_NOTE:
            index, prompt = e.data.get("index"), e.data.get("train_prompt")
            if isinstance(index, int) and (prompt is None or isinstance(prompt, str)):
                out[index] = prompt
    return out


def train_pairs(entries: Sequence[Entry]) -> list[TrainPair]:
    """The student's training pairs of a harvest, in query order: each answer's prompt (or
    the training prompt an attack recorded for it; answers marked ``None`` are left out), its
    response text and its top-logprobs when the endpoint returned them."""
    from extractbench.logs.harvest import ResponseEntry
    from extractbench.students import TrainPair

    remap = train_prompt_map(entries)
    out: list[TrainPair] = []
    for e in sorted((e for e in entries if isinstance(e, ResponseEntry)), key=lambda e: e.index):
        prompt = remap.get(e.index, e.request.prompt)
        if prompt is None:
            continue
        top = None
        if e.response.logprobs:
            top = [[(t.token, t.logprob) for t in tok.top] or [(tok.token, tok.logprob)]
                   for tok in e.response.logprobs]
        out.append(TrainPair(prompt=prompt, response=e.response.text, top_logprobs=top))
    return out
