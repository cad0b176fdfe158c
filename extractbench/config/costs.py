"""What a scenario can cost at worst, in dollars, before any request is sent; the spending
guard.

The estimate is an upper bound on what the run is charged at the endpoints' configured prices
(``prices`` in USD per million tokens; the reference endpoint is free unless you give it
prices). For one endpoint with prices ``p_in`` / ``p_out``:

- a request's worst case is ``(P + 16) * p_in + O * p_out`` per million: ``P`` the UTF-8 byte
  length of the longest prompt it may send (a byte-level BPE tokenizer never makes more tokens
  than bytes), 16 the chat-template overhead the oracle also reserves, ``O`` its ``max_tokens``
  (the attack's ``max_tokens`` parameter when set, else the task's answer length);
- **attack**, per cell: the smallest bound its budget sets: ``usd`` directly; ``queries`` x
  the request worst case over the attack pool's prompts; ``tokens`` x ``max(p_in, p_out)``;
  plus, outside ``usd`` (which includes them), the attack's keys x the endpoint's
  ``account_usd``. The oracle reserves each request's worst case before sending it, so no
  cell spends more;
- **teacher evaluation**, once per (endpoint, task, seed): every held-out prompt once,
  at ``O`` = the task's answer length;
- **defended evaluation** (utility), the same again for every endpoint with a defense stack
  and for every remote endpoint (a proxy's defenses are invisible from here);
- **benign traffic**, per cell: every prompt of the benign split once.

Failed requests are assumed not billed. Attacks that write their own prompts longer than the
attack pool's are not bounded by this estimate; give them a ``usd`` budget. Reasoning models
bill thinking tokens as output, inside ``max_tokens``, so the bound still holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from extractbench.config.budget import Budget, Prices
from extractbench.config.scenario import ReferenceEndpoint, Scenario
from extractbench.errors import ExtractbenchError

if TYPE_CHECKING:
    from extractbench.config.plan import Cell
    from extractbench.tasks import Task

__all__ = [
    "INPUT_OVERHEAD_TOKENS",
    "CostEstimate",
    "SpendError",
    "check_spend",
    "estimate_cost",
    "worst_case_usd",
]

INPUT_OVERHEAD_TOKENS = 16
"""Input tokens added to a prompt's byte length per request (the oracle's default reserve for
the chat template and system prompt)."""


class SpendError(ExtractbenchError):
    """The scenario could cost more than its ``max_usd``; the message is one line."""


@dataclass(frozen=True)
class CostEstimate:
    """Worst-case dollars, by part and by endpoint."""

    attack: float
    teacher_eval: float
    defended_eval: float
    benign: float
    by_endpoint: dict[str, float] = field(default_factory=dict)
    cells: int = 0

    @property
    def total(self) -> float:
        return self.attack + self.teacher_eval + self.defended_eval + self.benign

    def summary(self) -> str:
        """One line, e.g. ``$1.23 worst case over 12 cells (attack $1.10, teacher evaluation
        $0.05, defended evaluation $0.05, benign traffic $0.03)``."""
        parts = ", ".join(f"{name} {money(value)}" for name, value in (
            ("attack", self.attack), ("teacher evaluation", self.teacher_eval),
            ("defended evaluation", self.defended_eval), ("benign traffic", self.benign)))
        return f"{money(self.total)} worst case over {self.cells} cells ({parts})"


def money(value: float) -> str:
    """Dollars for a message: cents precision, or two significant digits below a cent."""
    if value == 0:
        return "$0"
    return f"${value:,.2f}" if value >= 0.01 else f"${value:.2g}"


def _request_usd(prices: Prices, prompt_bytes: int, max_tokens: int) -> float:
    return prices.cost(prompt_bytes + INPUT_OVERHEAD_TOKENS, max_tokens)


def _longest(task: Task, split: str) -> int:
    items = task.split(split)  # type: ignore[arg-type]
    return max((len(i.prompt.encode("utf-8")) for i in items), default=0)


def _attack_usd(budget: Budget, prices: Prices, prompt_bytes: int, max_tokens: int,
                keys: int = 1) -> float:
    accounts = prices.accounts_cost(keys)
    bounds = []
    if budget.usd is not None:
        bounds.append(budget.usd)
    if budget.queries is not None:
        bounds.append(accounts + budget.queries * _request_usd(prices, prompt_bytes,
                                                               max_tokens))
    if budget.tokens is not None:
        rate = max(prices.input_per_mtok, prices.output_per_mtok)
        bounds.append(accounts + budget.tokens * rate / 1e6)
    return min(bounds) if bounds else math.inf


def _attack_max_tokens(params: dict[str, Any], task: Task) -> int:
    value = params.get("max_tokens")
    return int(value) if isinstance(value, int | float) and value > 0 else task.max_answer_tokens


def estimate_cost(scenario: Scenario, cells: Sequence[Cell] | None = None) -> CostEstimate:
    """The worst-case cost of running ``cells`` (default: the scenario's whole grid).

    Pass the cells that will actually run (e.g. after ``--only``, or without endpoints whose
    API key is missing) for a tighter bound. See the module docstring for the formula.
    """
    from extractbench.config.plan import grid
    from extractbench.tasks import TASKS

    chosen = list(grid(scenario) if cells is None else cells)
    tasks: dict[tuple[str, int], Task] = {}

    def task(key: str, seed: int) -> Task:
        if (key, seed) not in tasks:
            spec = scenario.tasks[key]
            sizes = {"attack_pool": spec.attack_pool, "heldout": spec.heldout,
                     "benign": spec.benign}
            tasks[(key, seed)] = TASKS.get(spec.family)(seed, sizes, **spec.params)
        return tasks[(key, seed)]

    attack = benign = 0.0
    by_endpoint: dict[str, float] = {}
    evaluated: set[tuple[str, str, int]] = set()
    teacher_eval = defended_eval = 0.0
    for cell in chosen:
        endpoint = scenario.endpoints[cell.endpoint]
        prices = endpoint.prices
        t = task(cell.task, cell.seed)
        attack_spec = scenario.attacks[cell.attack]
        spent = _attack_usd(cell.budget, prices, _longest(t, "attack_pool"),
                            _attack_max_tokens(attack_spec.params, t), attack_spec.keys)
        spent_benign = len(t.split("benign")) * _request_usd(prices, _longest(t, "benign"),
                                                             t.max_answer_tokens)
        attack += spent
        benign += spent_benign
        total = spent + spent_benign
        key = (cell.endpoint, cell.task, cell.seed)
        if key not in evaluated:
            evaluated.add(key)
            once = len(t.split("heldout")) * _request_usd(prices, _longest(t, "heldout"),
                                                          t.max_answer_tokens)
            teacher_eval += once
            total += once
            defended = not isinstance(endpoint, ReferenceEndpoint) or bool(endpoint.defenses)
            if defended:
                defended_eval += once
                total += once
        by_endpoint[cell.endpoint] = by_endpoint.get(cell.endpoint, 0.0) + total
    return CostEstimate(attack=attack, teacher_eval=teacher_eval, defended_eval=defended_eval,
                        benign=benign, by_endpoint=by_endpoint, cells=len(chosen))


def worst_case_usd(scenario: Scenario, cells: Sequence[Cell] | None = None) -> float:
    """Total worst-case dollars of ``cells`` (default: the whole grid); the formula is in the
    module docstring."""
    return estimate_cost(scenario, cells).total


def check_spend(scenario: Scenario, cells: Sequence[Cell] | None = None) -> CostEstimate:
    """The estimate, or :class:`SpendError` when it exceeds the scenario's ``max_usd`` (no
    limit when ``max_usd`` is unset). Call it before any request is sent."""
    estimate = estimate_cost(scenario, cells)
    limit = scenario.max_usd
    if limit is not None and estimate.total > limit:
        raise SpendError(
            f"estimated worst-case cost {money(estimate.total)} exceeds max_usd {money(limit)} "
            f"(attack {money(estimate.attack)}, evaluation "
            f"{money(estimate.teacher_eval + estimate.defended_eval)}, benign "
            f"{money(estimate.benign)}; lower the budgets or seeds, or raise max_usd)"
        )
    return estimate
