"""Comparisons only between like measurements: the ranking set of each task (the attacks,
budgets and seeds a profile must be measured on to be ranked) and what each profile misses.

The ranking set of a task is, in order of precedence:

1. **declared**: the scenario's ``ranking:`` (every listed attack at every listed budget), on
   the tasks it lists (``ranking.tasks``; default every task): a task it does not list has
   no ranking set, so nothing is ranked on it and all its cells are outside;
2. **the undefended profile's**: the (attack, budget) pairs measured on the task's undefended
   profile(s) (records with an empty defense stack), so a defended profile is measured on
   everything the baseline was, and a profile that faced one weak attack cannot rank;
3. **shared**: with no undefended profile on the task, the pairs every profile of the task was
   measured on (empty when they share none: then nothing is ranked on that task).

The seeds of a pair are ``ranking.seeds`` when declared, otherwise every seed any profile was
measured on at that pair ("the same seeds"). A profile is complete on a task when it has an ok
cell (of any student recipe) at every pair of the task's set, on each of the pair's seeds. The
figures a board ranks on are computed from those cells only (:func:`restrict`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from extractbench.report import columns as c
from extractbench.report.worst import budget_order

if TYPE_CHECKING:
    from extractbench.config.scenario import Ranking

__all__ = ["DECLARED", "SHARED", "UNDEFENDED", "RankingSet", "merge_rankings", "missing",
           "outside", "pairs_text", "ranking_sets", "restrict"]

Pair = tuple[str, str]
"""(attack, budget label)."""

DECLARED = "declared"
"""The ranking set comes from the scenario's ``ranking:``."""
UNDEFENDED = "undefended"
"""The ranking set is what the task's undefended profile(s) were measured on."""
SHARED = "shared"
"""The ranking set is what every profile of the task was measured on."""


@dataclass(frozen=True)
class RankingSet:
    """What a profile must be measured on, on one task, to be ranked."""

    task: str
    pairs: tuple[Pair, ...]
    """(attack, budget label), budgets smallest first."""
    seeds: dict[Pair, tuple[int, ...]] = field(default_factory=dict)
    """The seeds each pair needs (none listed: no seed was measured there)."""
    source: str = DECLARED
    """:data:`DECLARED`, :data:`UNDEFENDED` or :data:`SHARED`."""
    reference: tuple[str, ...] = ()
    """The undefended profiles the set was taken from (:data:`UNDEFENDED`)."""

    @property
    def budgets(self) -> tuple[str, ...]:
        """The budget labels of the set, smallest first: the common budgets."""
        return tuple(dict.fromkeys(label for _, label in self.pairs))

    def describe(self) -> str:
        """The set in words, e.g. ``random-pool at q30, q300; synthetic at q300 (seeds 0, 1)``."""
        if not self.pairs:
            return "nothing (no attack and budget is measured on every profile)"
        seeds = sorted({s for pair in self.pairs for s in self.seeds.get(pair, ())})
        text = pairs_text(self.pairs)
        if seeds:
            text += f" ({_plural('seed', seeds)})"
        return text

    def why(self) -> str:
        """Where the set comes from, in words."""
        if self.source == DECLARED:
            return "the scenario's `ranking:`"
        if self.source == UNDEFENDED:
            return ("what the undefended profile " + ", ".join(self.reference)
                    + " was measured on, as the scenario declares no `ranking:`")
        return ("what every profile was measured on, as there is no undefended profile and "
                "the scenario declares no `ranking:`")


def _plural(word: str, values: Sequence[object]) -> str:
    return f"{word}{'s' if len(values) > 1 else ''} {', '.join(str(v) for v in values)}"


def pairs_text(pairs: Iterable[Pair]) -> str:
    """``A, B at q1000; C at q30, q300``: attacks with the same budgets grouped, in order."""
    budgets: dict[str, list[str]] = {}
    for attack, label in pairs:
        budgets.setdefault(attack, []).append(label)
    groups: dict[tuple[str, ...], list[str]] = {}
    for attack, labels in budgets.items():
        groups.setdefault(tuple(labels), []).append(attack)
    return "; ".join(f"{', '.join(attacks)} at {', '.join(labels)}"
                     for labels, attacks in groups.items())


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame[c.STATUS] == c.OK] if c.STATUS in frame else frame


def _pairs_of(rows: pd.DataFrame) -> set[Pair]:
    return {(str(a), str(b)) for a, b in zip(rows[c.ATTACK], rows[c.BUDGET_LABEL], strict=True)}


def _seeds_of(rows: pd.DataFrame) -> set[int]:
    return {int(s) for s in rows[c.SEED]} if c.SEED in rows else set()


def _ordered(pairs: Iterable[Pair], labels: Sequence[str], attacks: Sequence[str]) -> tuple[
        Pair, ...]:
    """Budgets in ``labels`` order (others after, as given), attacks in ``attacks`` order."""
    pairs = list(dict.fromkeys(pairs))
    rank_b = {label: i for i, label in enumerate(dict.fromkeys(
        [*labels, *(b for _, b in pairs)]))}
    rank_a = {attack: i for i, attack in enumerate(dict.fromkeys(
        [*attacks, *(a for a, _ in pairs)]))}
    return tuple(sorted(pairs, key=lambda p: (rank_b[p[1]], rank_a[p[0]])))


def ranking_sets(frame: pd.DataFrame, ranking: Ranking | None = None) -> dict[str, RankingSet]:
    """The ranking set of every task of a cells frame (see the module docstring)."""
    ok = _ok(frame)
    out: dict[str, RankingSet] = {}
    labels = budget_order(ok)
    for task in dict.fromkeys(str(t) for t in frame[c.TASK]):
        if ranking is not None and ranking.tasks is not None and task not in ranking.tasks:
            continue
        rows = ok[ok[c.TASK].astype(str) == task]
        attacks = list(dict.fromkeys(str(a) for a in rows[c.ATTACK]))
        reference: tuple[str, ...] = ()
        if ranking is not None:
            pairs = {(a, b) for a in ranking.attacks for b in ranking.budgets}
            order = [*labels, *ranking.budgets]
            source, attacks = DECLARED, list(ranking.attacks)
        else:
            order = labels
            undefended = rows[rows[c.DEFENSES].fillna("").astype(str) == ""] \
                if c.DEFENSES in rows else rows.iloc[0:0]
            if len(undefended):
                pairs = _pairs_of(undefended)
                source = UNDEFENDED
                reference = tuple(dict.fromkeys(str(p) for p in undefended[c.PROFILE]))
            else:
                per_profile = [_pairs_of(g) for _, g in rows.groupby(c.PROFILE, sort=False)]
                pairs = set.intersection(*per_profile) if per_profile else set()
                source = SHARED
        seeds: dict[Pair, tuple[int, ...]] = {}
        for pair in pairs:
            if ranking is not None and ranking.seeds is not None:
                seeds[pair] = tuple(sorted(ranking.seeds))
            else:
                at = rows[(rows[c.ATTACK].astype(str) == pair[0])
                          & (rows[c.BUDGET_LABEL].astype(str) == pair[1])]
                seeds[pair] = tuple(sorted(_seeds_of(at)))
        out[task] = RankingSet(task, _ordered(pairs, order, attacks), seeds, source, reference)
    return out


def missing(rows: pd.DataFrame, required: RankingSet) -> str:
    """What the ok cells ``rows`` (one profile on ``required.task``) miss of the set, in
    words; ``""`` when nothing is missing."""
    if not required.pairs:
        return ("nothing to compare on: no attack and budget is measured on every profile "
                "(declare `ranking:` in the scenario)")
    rows = _ok(rows)
    absent: list[Pair] = []
    gaps: dict[tuple[int, ...], list[Pair]] = {}
    for pair in required.pairs:
        at = rows[(rows[c.ATTACK].astype(str) == pair[0])
                  & (rows[c.BUDGET_LABEL].astype(str) == pair[1])]
        if at.empty:
            absent.append(pair)
            continue
        need = set(required.seeds.get(pair, ()))
        lacking = tuple(sorted(need - _seeds_of(at))) if c.SEED in at else ()
        if lacking:
            gaps.setdefault(lacking, []).append(pair)
    parts = [f"not measured against {pairs_text(absent)}"] if absent else []
    parts += [f"without {_plural('seed', seeds)} of {pairs_text(pairs)}"
              for seeds, pairs in gaps.items()]
    return "; ".join(parts)


def _in_set(frame: pd.DataFrame, sets: dict[str, RankingSet]) -> pd.Series:
    keep = pd.Series(False, index=frame.index)
    for task, required in sets.items():
        for pair in required.pairs:
            mask = ((frame[c.TASK].astype(str) == task)
                    & (frame[c.ATTACK].astype(str) == pair[0])
                    & (frame[c.BUDGET_LABEL].astype(str) == pair[1]))
            seeds = required.seeds.get(pair, ())
            if seeds and c.SEED in frame:
                mask &= frame[c.SEED].isin(seeds)
            keep |= mask
    return keep


def restrict(frame: pd.DataFrame, sets: dict[str, RankingSet]) -> pd.DataFrame:
    """The ok cells of ``frame`` inside the ranking sets: what the boards rank on."""
    ok = _ok(frame)
    return ok[_in_set(ok, sets)]


def outside(frame: pd.DataFrame, sets: dict[str, RankingSet]) -> list[tuple[str, str]]:
    """The (attack, budget) pairs measured on a profile but outside its task's ranking set:
    ``(task, line)`` per profile and task, e.g. ``detector-block (classification): stealth at
    q1000``."""
    ok = _ok(frame)
    rest = ok[~_in_set(ok, sets)]
    lines = []
    for (profile, task), rows in rest.groupby([c.PROFILE, c.TASK], sort=False):
        pairs = _ordered(_pairs_of(rows), budget_order(ok), list(dict.fromkeys(
            str(a) for a in ok[c.ATTACK])))
        lines.append((str(task), f"{profile} ({task}): {pairs_text(pairs)}"))
    return lines


def merge_rankings(rankings: Sequence[Ranking | None]) -> Ranking | None:
    """One ranking for several runs: the union of their attacks, budgets, seeds and tasks (the
    strictest), ``None`` when none declares one. A run without a declared seed list lets every
    measured seed count; one without a task list ranks on every task."""
    from extractbench.config.scenario import Ranking

    declared = [r for r in rankings if r is not None]
    if not declared:
        return None

    def union(lists: Iterable[Sequence[object]]) -> list[object]:
        return list(dict.fromkeys(v for values in lists for v in values))

    seeds = None if any(r.seeds is None for r in declared) else union(
        r.seeds or [] for r in declared)
    tasks = None if any(r.tasks is None for r in declared) else union(
        r.tasks or [] for r in declared)
    return Ranking.model_validate({
        "attacks": union(r.attacks for r in declared),
        "budgets": union(r.budgets for r in declared), "seeds": seeds, "tasks": tasks})
