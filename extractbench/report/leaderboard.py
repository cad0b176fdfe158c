"""The leaderboard: how much each profile leaks to its worst-case attacker, from records alone.

Comparisons only between like measurements: each task has a *ranking set*, the attacks and
budgets (and seeds) a profile must be measured on to be ranked: the scenario's ``ranking:``, or
by default what the task's undefended profile was measured on (or, without one, what every
profile shares); see :mod:`~extractbench.report.requirement`. A profile missing part of it is
listed as ``incomplete: not measured against ...``, never ranked.

Per profile (and per task when asked), for each *common budget* (those of the ranking set),
smallest first: the worst-case transfer, i.e. the max over the set's attacks (and student
recipes) of the seed-mean transfer, with that attack's CI and name. From that curve:

- ``resistance = 1 - worst-case transfer at the largest common budget`` (CI: ``1 - high,
  1 - low`` of that attack's transfer CI);
- ``auc``: area under worst-case transfer vs ``log10(queries spent)`` (trapezoid), divided by
  its log-range so it is in transfer units (a single budget gives its transfer); only when
  every common budget is measured;
- ``q50_queries`` / ``q50_usd``: what the worst-case attacker spent to reach 50% transfer,
  interpolated linearly in log-spend between the common budgets (``q50_status`` says
  ``interpolated``, ``at_first_budget`` (below the smallest budget), ``not_reached`` (above
  the largest) or ``not_measured``).

Spend is the x-axis: a budget sits at the queries (and dollars) its campaign actually spent,
seed mean, not at its label; a budget that could not be spent (attack pool exhausted, keys
refused) is marked (``wc_<label>_short``; ``spent 600 of 1,000`` in the tables, hollow in the
plots).

The CIs of ``auc`` and ``q50_*`` come from one bootstrap of the whole worst-case curve: each
replicate resamples held-out items (one draw per held-out set, shared by every cell scored on
it, so budgets stay correlated as they are in the data) and seeds, recomputes the transfer of
the cells that achieved the worst case at each budget, and recomputes the area and the
crossing. A replicate that never reaches 50% counts as ``inf``, so a bound can be "not
reached". Cells without per-item scores enter as normal draws matching their recorded interval.

The defender's side, when records carry it (``None`` fields are absent, never zero):
``utility`` (defended / teacher held-out score, CI over held-out items), ``fpr`` (flagged
benign keys / benign keys, pooled over the profile's cells, CI over keys), and for the
worst-case attacker at the largest common budget: ``flagged_at`` (mean query index over the
seeds it was flagged in), ``flagged_frac``, ``transfer_at_flag`` and the watermark ``z`` next
to its clean-control ``z``.

Ranking that cannot be gamed by facing fewer attacks or by wrecking utility: complete
profiles whose utility is at least ``utility_threshold`` (default 0.9) are ranked by
resistance, highest first; a profile whose resistance CI overlaps that of the first profile of
the tie group above it shares that rank, shown as ``=2``. Incomplete profiles, profiles below
the threshold, or with utility not measured while others have it, are listed after them,
unranked, with the reason. When no profile has a utility, every complete profile is ranked and
the report says so. Skipped and failed cells are listed with their reason and never counted as
numbers.

The figures are computed once by :mod:`extractbench.report.analysis` (curve arithmetic in
:mod:`~extractbench.report.curve`, the worst case in :mod:`~extractbench.report.worst`, the
ranking sets in :mod:`~extractbench.report.requirement`, the CIs of the curve in
:mod:`~extractbench.report.bootstrap`, the defender's side in
:mod:`~extractbench.report.defender`, the tables in :mod:`~extractbench.report.board`) and
written by :mod:`~extractbench.report.write`; this module keeps their public names.
"""

from __future__ import annotations

from extractbench.report.analysis import common_tasks
from extractbench.report.board import UTILITY_THRESHOLD, leaderboard_frame
from extractbench.report.curve import TARGET, crossing, log_auc, rank_labels
from extractbench.report.worst import worst_case
from extractbench.report.write import PLOT_STEMS, write_leaderboard

__all__ = [
    "PLOT_STEMS",
    "TARGET",
    "UTILITY_THRESHOLD",
    "common_tasks",
    "crossing",
    "leaderboard_frame",
    "log_auc",
    "rank_labels",
    "worst_case",
    "write_leaderboard",
]
