"""The leaderboard: how much each profile leaks to its worst-case attacker, from records alone.

Per profile (and per task when asked), for each budget ordered by size: the worst-case
transfer, i.e. the max over attacks (and student recipes) of the seed-mean transfer, with that
attack's CI and name. From that curve:

- ``resistance = 1 - worst-case transfer at the largest budget`` (CI: ``1 - high, 1 - low`` of
  that attack's transfer CI);
- ``auc``: area under worst-case transfer vs ``log10(queries)`` (trapezoid), divided by the
  log-range of the budgets so it is in transfer units (a single budget gives its transfer);
- ``q50_queries`` / ``q50_usd``: what the worst-case attacker needed to reach 50% transfer,
  interpolated linearly in log-budget between the measured budgets (``q50_status`` says
  ``interpolated``, ``at_first_budget`` or ``not_reached``).

The x of a budget is its query limit, or the queries actually spent when the budget is in
tokens or dollars (same for dollars: the dollar limit, or the dollars spent).

The CIs of ``auc`` and ``q50_*`` come from one bootstrap of the whole worst-case curve: each
replicate resamples held-out items (one draw per held-out set, shared by every cell scored on
it, so budgets stay correlated as they are in the data) and seeds, recomputes every cell's
transfer, takes the max over attacks per budget, and recomputes the area and the crossing. A
replicate that never reaches 50% counts as ``inf``, so a bound can be "not reached". Cells
without per-item scores enter as normal draws matching their recorded interval.

The defender's side, when records carry it (``None`` fields are absent, never zero):
``utility`` (defended / teacher held-out score, CI over held-out items), ``fpr`` (flagged
benign keys / benign keys, pooled over the profile's cells, CI over keys), and for the
worst-case attacker at the largest budget: ``flagged_at`` (mean query index over the seeds it
was flagged in), ``flagged_frac``, ``transfer_at_flag`` and the watermark ``z`` next to its
clean-control ``z``.

Ranking that cannot be gamed by wrecking utility: profiles whose utility is at least
``utility_threshold`` (default 0.9) are ranked by resistance, highest first; a profile whose
resistance CI overlaps that of the first profile of the tie group above it shares that rank,
shown as ``=2``. Profiles below the threshold, or with utility not measured while others have
it, are listed after them, unranked, with the reason. When no profile has a utility, all are
ranked and the report says so. Skipped and failed cells are listed with their reason and never
counted as numbers.

The figures are computed once by :mod:`extractbench.report.analysis` (curve arithmetic in
:mod:`~extractbench.report.curve`, the worst case in :mod:`~extractbench.report.worst`, the CIs
of the curve in :mod:`~extractbench.report.bootstrap`, the defender's side in
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
