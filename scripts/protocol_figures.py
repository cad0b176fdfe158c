"""The measurement protocol's figures (issue 13) from run directories, as Markdown tables:

- per task family and budget on the undefended profile: transfer per seed, the seed mean with
  its lowest and highest seed, the queries spent, the student's steps, whether it converged,
  and the baseline that won (``base_kind``) with its score;
- the ranked comparison: per profile and attack at each ranked budget, the seed mean with its
  lowest and highest seed and the share of seeds flagged;
- the baselines: which trivial baseline won per family and student, and how often;
- held-out hygiene per attack: the prompts each attack tried that the oracle refused as held
  out (``errors_by_type["heldout"]``), and the held-out overlap of what it bought (must be 0).

    .venv/bin/python scripts/protocol_figures.py results/runs/<run-id> [more run dirs]

Every figure is read from the records; nothing is computed that the leaderboard does not.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from extractbench.logs.records import CellRecord
from extractbench.logs.store import load_records


def _t(r: CellRecord) -> float | None:
    return r.transfer.value if r.transfer is not None else None


def _fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _spread(values: Sequence[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return _fmt(values[0])
    return f"{statistics.fmean(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def curves(records: Sequence[CellRecord]) -> str:
    groups: dict[tuple[str, str, str, str], list[CellRecord]] = defaultdict(list)
    for r in records:
        if r.status == "ok" and not r.defenses and r.attack == "random-pool":
            groups[(r.task, r.student, r.attack, r.budget_label)].append(r)
    rows = []
    for (task, student, _attack, label), cells in groups.items():
        cells.sort(key=lambda r: r.seed)
        values = [v for v in (_t(r) for r in cells) if v is not None]
        converged = [r.converged for r in cells if r.converged is not None]
        rows.append([
            task, student, label, ", ".join(f"s{r.seed} {_fmt(_t(r))}" for r in cells),
            _spread(values), f"{statistics.fmean(r.queries for r in cells):,.0f}",
            ", ".join(sorted({str(r.train_steps) for r in cells})),
            "–" if not converged else f"{sum(converged)}/{len(converged)}",
            ", ".join(sorted({r.base_kind or "–" for r in cells})),
            _fmt(statistics.fmean(r.base_score for r in cells if r.base_score is not None)),
        ])
    return _table(["family", "student", "budget", "per seed", "mean [min, max]", "spent",
                   "steps", "converged", "base", "base score"], rows)


def ranked(records: Sequence[CellRecord]) -> str:
    groups: dict[tuple[str, str, str, str], list[CellRecord]] = defaultdict(list)
    for r in records:
        if r.status == "ok" and len({x.seed for x in records if x.profile == r.profile
                                     and x.task == r.task and x.attack == r.attack
                                     and x.budget_label == r.budget_label}) >= 3:
            groups[(r.task, r.budget_label, r.profile, r.attack)].append(r)
    rows = []
    for (task, label, profile, attack), cells in groups.items():
        values = [v for v in (_t(r) for r in cells) if v is not None]
        flagged = sum(r.flagged_at is not None for r in cells)
        rows.append([task, label, profile, attack, len(cells), _spread(values),
                     f"{flagged}/{len(cells)}",
                     f"{statistics.fmean(r.queries for r in cells):,.0f}"])
    return _table(["task", "budget", "profile", "attack", "seeds", "mean [min, max]",
                   "flagged", "spent"], rows)


def baselines(records: Sequence[CellRecord]) -> str:
    wins: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in records:
        if r.status == "ok" and r.base_kind is not None and r.base_score is not None:
            wins[(r.task, r.student)][r.base_kind] += 1
            scores[(r.task, r.student)].append(r.base_score)
    rows = [[task, student, ", ".join(f"{k} {n}" for k, n in sorted(w.items())),
             f"{min(scores[(task, student)]):.3f}-{max(scores[(task, student)]):.3f}"]
            for (task, student), w in wins.items()]
    return _table(["family", "student", "winner (cells)", "base score"], rows)


def hygiene(records: Sequence[CellRecord]) -> str:
    groups: dict[tuple[str, str], list[CellRecord]] = defaultdict(list)
    for r in records:
        if r.status == "ok":
            groups[(r.task, r.attack)].append(r)
    rows = []
    for (task, attack), cells in groups.items():
        refused = [r.errors_by_type.get("heldout", 0) for r in cells]
        overlap = {r.heldout_overlap for r in cells}
        rows.append([task, attack, len(cells), sum(refused), max(refused),
                     ", ".join(str(o) for o in sorted(overlap, key=str))])
    return _table(["task", "attack", "cells", "held-out prompts refused (all cells)",
                   "most in one cell", "held-out overlap bought"], rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    args = parser.parse_args(argv)
    records = load_records(args.runs)
    for title, text in (("Curves (undefended, random-pool)", curves(records)),
                        ("Ranked comparison (cells with 3 or more seeds)", ranked(records)),
                        ("Baselines", baselines(records)),
                        ("Held-out hygiene per attack", hygiene(records))):
        print(f"## {title}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
