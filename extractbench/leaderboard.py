"""The leaderboard: how much each profile leaks to its worst-case attacker, from records alone.

Per profile (and per task when asked), for each budget ordered by size: the worst-case
transfer, i.e. the max over attacks (and student recipes) of the seed-mean transfer, with that
attack's CI and name. From that curve:

- ``resistance = 1 - worst-case transfer at the largest budget`` (CI: ``1 - high, 1 - low``);
- ``auc``: area under worst-case transfer vs ``log10(queries)`` (trapezoid), divided by the
  log-range of the budgets so it is in transfer units (a single budget gives its transfer);
- ``q50_queries`` / ``q50_usd``: what the worst-case attacker needed to reach 50% transfer,
  interpolated linearly in log-budget between the measured budgets (``q50_status`` says
  ``interpolated``, ``at_first_budget`` or ``not_reached``).

The x of a budget is its query limit, or the queries actually spent when the budget is in
tokens or dollars (same for dollars: the dollar limit, or the dollars spent).

Ranks sort by resistance, highest first; a profile whose resistance CI overlaps that of the
first profile of the tie group above it (usually its upper neighbour) shares that rank, shown
as ``=2``. Skipped and failed cells are listed
with their reason and never counted as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from extractbench.records import CellRecord
from extractbench.results import records_frame, seed_means

__all__ = [
    "crossing",
    "leaderboard_frame",
    "log_auc",
    "rank_labels",
    "worst_case",
    "write_leaderboard",
]

TARGET = 0.5
"""The transfer level whose cost the leaderboard reports (``q50_*``)."""

FloatArray = npt.NDArray[np.float64]

# optional per-profile columns, shown when records carry them
_PROFILE_EXTRAS = ("utility", "defended_score", "fpr")


def worst_case(curves: pd.DataFrame, by_task: bool = True) -> pd.DataFrame:
    """Worst case over attacks per (profile, task, budget) of a :func:`seed_means` frame.

    Columns: profile, task, budget_label, transfer, transfer_low, transfer_high, attack,
    student, x_queries, x_usd, and the mean of the other numeric columns of the winning row.
    With ``by_task=False`` tasks are averaged per (profile, budget): the value and the CI
    bounds are the means over tasks of each task's worst case (exact for one task; for
    several the bounds are conservative), and ``attack`` lists ``task:attack`` when the
    winning attack differs between tasks.
    """
    keys = ["profile", "task", "budget_label"]
    if curves.empty:
        return pd.DataFrame(columns=[*keys, "transfer", "transfer_low", "transfer_high",
                                     "attack", "student", "x_queries", "x_usd"])
    rows: list[dict[str, object]] = []
    for _, group in curves.groupby(keys, sort=False):
        defined = group.dropna(subset=["transfer"])
        if len(defined):
            best = defined.iloc[int(np.argmax(defined["transfer"].to_numpy(dtype=float)))]
            rows.append({str(k): v for k, v in best.items()})
        else:
            row = {str(k): v for k, v in group.iloc[0].items()}
            row.update(transfer=math.nan, transfer_low=math.nan, transfer_high=math.nan,
                       attack="", student="")
            rows.append(row)
    per_task = pd.DataFrame(rows)
    if by_task:
        return per_task
    combined: list[dict[str, object]] = []
    for (profile, label), group in per_task.groupby(["profile", "budget_label"], sort=False):
        numbers = group.select_dtypes("number").mean(numeric_only=True)
        row = {str(k): v for k, v in numbers.items()}
        attacks = group["attack"].astype(str)
        students = group["student"].astype(str)
        row.update(
            profile=profile, budget_label=label,
            task=", ".join(sorted(group["task"].astype(str))),
            attack=attacks.iloc[0] if attacks.nunique() == 1 else ", ".join(
                f"{t}:{a}" for t, a in zip(group["task"], attacks, strict=True)),
            student=students.iloc[0] if students.nunique() == 1 else ", ".join(
                sorted(set(students))),
        )
        combined.append(row)
    return pd.DataFrame(combined)


def _clean_curve(xs: npt.ArrayLike, ys: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    order = np.argsort(x[keep], kind="stable")
    return x[keep][order], y[keep][order]


def log_auc(xs: npt.ArrayLike, ys: npt.ArrayLike) -> float:
    """Trapezoid area under ``ys`` vs ``log10(xs)`` divided by the log-range (transfer units).

    Points with a non-positive or missing x or y are left out; one point gives its y; none
    gives ``nan``.
    """
    x, y = _clean_curve(xs, ys)
    if x.size == 0:
        return math.nan
    logx = np.log10(x)
    span = logx[-1] - logx[0]
    if x.size == 1 or span == 0:
        return float(y.mean())
    area = float(np.sum((logx[1:] - logx[:-1]) * (y[1:] + y[:-1]) / 2))
    return area / float(span)


def crossing(
    xs: npt.ArrayLike, ys: npt.ArrayLike, target: float = TARGET,
    others: Sequence[npt.ArrayLike] = (),
) -> tuple[str, list[float]]:
    """Where the curve ``ys`` vs ``xs`` first reaches ``target``, in x units.

    Interpolates linearly in ``log10(x)`` between the last budget below the target and the
    first at or above it. Returns ``(status, [x, *others_at_crossing])`` with ``status`` one
    of ``interpolated``, ``at_first_budget`` (the smallest budget already reaches it; values
    are that budget's) or ``not_reached`` (values ``nan``). Each sequence in ``others`` (e.g.
    dollars spent at each budget) is interpolated at the same fraction, in log space when its
    two values are positive, linearly otherwise.
    """
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    extra = [np.asarray(o, dtype=float) for o in others]
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    order = np.argsort(x[keep], kind="stable")
    x, y = x[keep][order], y[keep][order]
    extra = [e[keep][order] for e in extra]
    hits = np.flatnonzero(y >= target)
    if hits.size == 0:
        return "not_reached", [math.nan] * (1 + len(extra))
    i = int(hits[0])
    if i == 0:
        return "at_first_budget", [float(x[0]), *(float(e[0]) for e in extra)]
    fraction = (target - y[i - 1]) / (y[i] - y[i - 1])
    values = []
    for series in (x, *extra):
        a, b = float(series[i - 1]), float(series[i])
        if a > 0 and b > 0:
            values.append(10 ** (math.log10(a) + fraction * (math.log10(b) - math.log10(a))))
        else:
            values.append(a + fraction * (b - a))
    return "interpolated", values


def rank_labels(lows: Sequence[float], highs: Sequence[float]) -> list[str]:
    """Rank labels for rows already sorted best first, given each row's CI bounds.

    A row whose interval overlaps that of the first row of the tie group above it (for the
    second row of a group: its neighbour) shares that rank, and every member of a tie is
    labelled ``=k``; otherwise a row's rank is its 1-based position. Comparing with the
    group's first row rather than always the previous row stops a chain of small overlaps
    from tying profiles whose intervals are far apart.
    """
    ranks: list[int] = []
    for i in range(len(lows)):
        leader = ranks[-1] - 1 if ranks else 0
        overlaps = i > 0 and _overlap(lows[i], highs[i], lows[leader], highs[leader])
        ranks.append(ranks[-1] if overlaps else i + 1)
    return [f"={r}" if ranks.count(r) > 1 else str(r) for r in ranks]


def _overlap(low_a: float, high_a: float, low_b: float, high_b: float) -> bool:
    if any(math.isnan(v) for v in (low_a, high_a, low_b, high_b)):
        return False
    return low_a <= high_b and low_b <= high_a


def _budget_order(wc: pd.DataFrame) -> list[str]:
    order = wc.groupby("budget_label", sort=False)["x_queries"].median()
    return [str(label) for label in order.sort_values(kind="stable").index]


def _profile_row(group: pd.DataFrame, curves: pd.DataFrame) -> dict[str, object]:
    group = group.sort_values("x_queries", kind="stable")
    defined = group.dropna(subset=["transfer"])
    row: dict[str, object] = {}
    for _, point in group.iterrows():
        label = point["budget_label"]
        row[f"wc_{label}"] = point["transfer"]
        row[f"wc_{label}_low"] = point["transfer_low"]
        row[f"wc_{label}_high"] = point["transfer_high"]
        row[f"wc_{label}_attack"] = point["attack"]
        row[f"wc_{label}_student"] = point["student"]
        row[f"wc_{label}_queries"] = point["x_queries"]
    last = defined.iloc[-1] if len(defined) else None
    row["budget_max"] = last["budget_label"] if last is not None else ""
    row["resistance"] = 1 - last["transfer"] if last is not None else math.nan
    row["resistance_low"] = 1 - last["transfer_high"] if last is not None else math.nan
    row["resistance_high"] = 1 - last["transfer_low"] if last is not None else math.nan
    row["worst_attack"] = last["attack"] if last is not None else ""
    row["worst_student"] = last["student"] if last is not None else ""
    row["auc"] = log_auc(group["x_queries"], group["transfer"])
    status, (q50, usd50) = crossing(group["x_queries"], group["transfer"],
                                    others=[group["x_usd"]])
    row.update(q50_queries=q50, q50_usd=usd50, q50_status=status)
    row["teacher_score"] = _mean(curves, "teacher_score")
    for name in _PROFILE_EXTRAS:
        if name in curves and curves[name].notna().any():
            row[name] = _mean(curves, name)
    if last is not None and "flagged_at" in group and "flagged_frac" in group:
        row["flagged_at"] = last["flagged_at"]
        row["flagged_frac"] = last["flagged_frac"]
    row["n_cells"] = int(curves["n_seeds"].sum())
    return row


def _mean(frame: pd.DataFrame, column: str) -> float:
    if column not in frame:
        return math.nan
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan


def leaderboard_frame(
    frame: pd.DataFrame, by_task: bool = False, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """The per-profile table (per profile and task with ``by_task``) from a
    :func:`~extractbench.results.records_frame` (or its
    :func:`~extractbench.results.seed_means`), sorted by rank.

    Columns: rank, rank_label, profile, [task], resistance(_low/_high), budget_max,
    worst_attack, worst_student, auc, q50_queries, q50_usd, q50_status, teacher_score, the
    optional [utility, defended_score, fpr] (means) and [flagged_at, flagged_frac] (of the
    worst-case attack at the largest budget: mean flag query index over flagged seeds, and
    the fraction of seeds flagged) when records carry them, n_cells (ok cells counted), then
    per budget ``wc_<label>`` with ``_low``, ``_high``, ``_attack``, ``_student`` and
    ``_queries`` (the budget's x: query limit, or queries spent).
    """
    curves = frame if "n_seeds" in frame else seed_means(frame, n_boot=n_boot, seed=seed)
    wc = worst_case(curves, by_task=by_task)
    keys = ["profile", "task"] if by_task else ["profile"]
    if wc.empty:
        return pd.DataFrame(columns=["rank", "rank_label", *keys, "resistance"])
    rows = []
    for key, group in wc.groupby(keys, sort=False):
        key_values = key if isinstance(key, tuple) else (key,)
        mask = np.ones(len(curves), dtype=bool)
        for name, value in zip(keys, key_values, strict=True):
            mask &= (curves[name] == value).to_numpy()
        row: dict[str, object] = dict(zip(keys, key_values, strict=True))
        row.update(_profile_row(group, curves[mask]))
        rows.append(row)
    table = pd.DataFrame(rows)
    table = table.sort_values("resistance", ascending=False, na_position="last", kind="stable")
    table = table.reset_index(drop=True)
    labels = rank_labels(list(table["resistance_low"]), list(table["resistance_high"]))
    table.insert(0, "rank_label", labels)
    table.insert(0, "rank", [int(label.lstrip("=")) for label in labels])
    head = [c for c in table.columns if not c.startswith("wc_")]
    budget_columns = [f"wc_{label}{suffix}" for label in _budget_order(wc)
                      for suffix in ("", "_low", "_high", "_attack", "_student", "_queries")]
    return table[head + [c for c in budget_columns if c in table]]


# ---------------------------------------------------------------- markdown


def _num(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    number = float(value)  # type: ignore[arg-type]
    if digits == 0 or (number.is_integer() and abs(number) >= 100):
        return f"{number:,.0f}"
    return f"{number:.{digits}f}"


def _ci(value: object, low: object, high: object) -> str:
    if _num(value) == "–":
        return "–"
    if _num(low) == "–" or _num(high) == "–":
        return _num(value)
    return f"{_num(value)} [{_num(low)}, {_num(high)}]"


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(headers), line(["---"] * len(headers)), *(line(r) for r in rows), ""]


def _usd(value: object) -> str:
    text = _num(value)
    return text if text == "–" else f"{float(value):.3g}"  # type: ignore[arg-type]


def _q50(status: object, text: str) -> str:
    if status == "not_reached":
        return "not reached within budget"
    return f"≤ {text}" if status == "at_first_budget" else text


def _leaderboard_md(table: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    labels = [c[3:-len("_attack")] for c in table.columns
              if c.startswith("wc_") and c.endswith("_attack")]
    extras = [c for c in (*_PROFILE_EXTRAS, "flagged_at") if c in table]
    headers = ["rank", *keys, "resistance", *(f"worst case @ {lb}" for lb in labels), "AUC",
               "queries to 50%", "$ to 50%", "teacher", *extras]
    students = {v for lb in labels for v in table[f"wc_{lb}_student"]
                if isinstance(v, str) and v}
    rows = []
    for _, r in table.iterrows():
        cells = [str(r["rank_label"]), *(str(r[k]) for k in keys),
                 _ci(r["resistance"], r["resistance_low"], r["resistance_high"])]
        for lb in labels:
            transfer = _ci(r[f"wc_{lb}"], r[f"wc_{lb}_low"], r[f"wc_{lb}_high"])
            attack = r[f"wc_{lb}_attack"]
            if len(students) > 1:
                attack = f"{attack} · {r[f'wc_{lb}_student']}"
            cells.append(f"{transfer} ({attack})" if isinstance(attack, str) and attack
                         else transfer)
        cells += [_num(r["auc"]), _q50(r["q50_status"], _num(r["q50_queries"], 0)),
                  _q50(r["q50_status"], _usd(r["q50_usd"])), _num(r["teacher_score"]),
                  *(_num(r[c]) for c in extras)]
        rows.append(cells)
    return _md_table(headers, rows)


def _header_md(frame: pd.DataFrame) -> list[str]:
    def uniq(column: str) -> list[str]:
        return sorted({str(v) for v in frame[column].dropna()}) if column in frame else []

    scenarios = frame.drop_duplicates(["scenario_name", "scenario_hash"])
    shas = frame.drop_duplicates(["git_sha", "git_dirty"])
    ok = int((frame["status"] == "ok").sum())
    return [
        "# extractbench leaderboard",
        "",
        f"- runs: {', '.join(f'`{r}`' for r in uniq('run_id'))}",
        "- scenarios: " + ", ".join(f"`{s.scenario_name}` (sha256 `{str(s.scenario_hash)[:12]}`)"
                                    for s in scenarios.itertuples()),
        "- code: " + ", ".join(f"git `{str(s.git_sha)[:12]}`" + (" (dirty)" if s.git_dirty
                                                                  else "")
                               for s in shas.itertuples())
        + f"; extractbench {', '.join(uniq('extractbench_version'))}",
        f"- generated: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- cells: {ok} ok, {len(frame) - ok} skipped or failed",
        "",
        "Transfer = (student − base) / (teacher − base) on held-out items, unclipped; brackets "
        "are 95% bootstrap CIs. *Worst case* = max over attacks of the seed-mean transfer "
        "(attack in parentheses). *Resistance* = 1 − worst-case transfer at the largest "
        "budget. *AUC* = area under worst-case transfer vs log10(queries), divided by the "
        "log-range. *Queries / $ to 50%*: what the worst-case attacker needed to reach 50% "
        "transfer, interpolated in log-budget. Rank `=k`: a tie; the profile's resistance CI "
        "overlaps that of the first profile ranked k.",
        "",
    ]


def _cells_md(frame: pd.DataFrame) -> list[str]:
    ok = frame[frame["status"] == "ok"].sort_values(
        ["profile", "task", "attack", "budget_queries", "budget_label", "student", "seed"],
        kind="stable")
    headers = ["profile", "task", "attack", "budget", "student", "seed", "teacher", "base",
               "student score", "transfer", "fidelity", "queries", "tokens", "cost $",
               "wall s"]
    rows = [[str(r.profile), str(r.task), str(r.attack), str(r.budget_label), str(r.student),
             str(r.seed), _num(r.teacher_score), _num(r.base_score), _num(r.student_score),
             _ci(r.transfer, r.transfer_low, r.transfer_high), _num(r.fidelity),
             _num(r.queries), _num(r.tokens), _usd(r.cost_usd), _num(r.wall_s, 1)]
            for r in ok.itertuples()]
    return ["## Cells", "", *_md_table(headers, rows)]


def _failed_md(frame: pd.DataFrame) -> list[str]:
    bad = frame[frame["status"] != "ok"]
    if bad.empty:
        return []
    lines = ["## Skipped and failed cells", "",
             "Not counted in any number above.", ""]
    for r in bad.itertuples():
        reason = str(r.error).splitlines()[0] if isinstance(r.error, str) and r.error \
            else "(no reason recorded)"
        lines.append(f"- `{r.cell_id}` — {r.status}: {reason}")
    return [*lines, ""]


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in ("items",) if c in frame])


def write_leaderboard(
    records: Sequence[CellRecord], out_dir: Path, by_task: bool | None = None,
    n_boot: int = 1000, seed: int = 0, plots: bool = True,
) -> list[Path]:
    """Write ``leaderboard.md``, ``leaderboard.csv`` (the per-profile table), ``cells.csv``
    (every cell, failed ones included) and the plots into ``out_dir``; return the paths.

    ``by_task=None`` adds a per-(profile, task) table to the markdown when there are several
    tasks (``leaderboard.csv`` then has one row per profile and task).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = records_frame(records)
    if frame.empty:
        raise ValueError("no records to build a leaderboard from")
    several_tasks = frame["task"].nunique() > 1
    per_task = several_tasks if by_task is None else by_task
    curves = seed_means(frame, n_boot=n_boot, seed=seed)
    table = leaderboard_frame(curves, by_task=False)
    task_table = leaderboard_frame(curves, by_task=True) if per_task else None

    paths: list[Path] = []
    csv_path = out_dir / "leaderboard.csv"
    (task_table if task_table is not None else table).to_csv(csv_path, index=False)
    cells_path = out_dir / "cells.csv"
    _csv_frame(frame).to_csv(cells_path, index=False)

    figures: list[Path] = []
    if plots and (frame["status"] == "ok").any():
        from extractbench.plots import plot_transfer_vs_budget, plot_transfer_vs_cost

        figures += plot_transfer_vs_budget(curves, out_dir / "transfer_vs_budget")
        figures += plot_transfer_vs_cost(curves, out_dir / "transfer_vs_cost")

    lines = _header_md(frame)
    lines += ["## Profiles", "", *_leaderboard_md(table, ["profile"])]
    if task_table is not None:
        lines += ["## Profiles by task", "", *_leaderboard_md(task_table, ["profile", "task"])]
    pngs = [f for f in figures if f.suffix == ".png"]
    if pngs:
        lines += ["## Plots", "", *(f"![{f.stem}]({f.name})" for f in pngs), ""]
    lines += _cells_md(frame)
    lines += _failed_md(frame)
    md_path = out_dir / "leaderboard.md"
    md_path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    paths += [md_path, csv_path, cells_path, *figures]
    return paths
