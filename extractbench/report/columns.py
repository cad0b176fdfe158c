"""Every column name the report's frames share, defined once.

:func:`~extractbench.report.frames.records_frame` flattens a
:class:`~extractbench.logs.records.CellRecord` into these columns,
:func:`~extractbench.report.frames.seed_means` adds the seed-mean ones, and the analysis
(:mod:`extractbench.report.analysis`) writes the leaderboard's. Estimates come as three
columns, ``NAME``, ``NAME_low`` and ``NAME_high`` (see :func:`low` and :func:`high`); the
leaderboard has one group of ``wc_<budget>...`` columns per budget (see :func:`wc`).
"""

from __future__ import annotations

from typing import Final

# ----------------------------------------------------------- a cell's coordinates and status
RUN_ID: Final = "run_id"
CELL_ID: Final = "cell_id"
STATUS: Final = "status"
ERROR: Final = "error"
PROFILE: Final = "profile"
TASK: Final = "task"
ATTACK: Final = "attack"
STUDENT: Final = "student"
BUDGET_LABEL: Final = "budget_label"
SEED: Final = "seed"
DEFENSES: Final = "defenses"

CELL_KEYS: Final = [PROFILE, TASK, ATTACK, STUDENT, BUDGET_LABEL]
"""A cell's coordinates except the seed: what seed means group by."""

OK: Final = "ok"
"""The ``status`` of a measured cell."""

# ----------------------------------------------------------------------------- capability
TEACHER_SCORE: Final = "teacher_score"
BASE_SCORE: Final = "base_score"
STUDENT_SCORE: Final = "student_score"
FIDELITY: Final = "fidelity"
TRANSFER: Final = "transfer"
TRANSFER_LOW: Final = "transfer_low"
TRANSFER_HIGH: Final = "transfer_high"
TRANSFER_LEVEL: Final = "transfer_level"
ITEMS: Final = "items"
"""The :class:`~extractbench.logs.records.ItemScores` object (or ``None``)."""

# ------------------------------------------------------------------------- spend and time
QUERIES: Final = "queries"
TOKENS: Final = "tokens"
"""Input + output tokens."""
COST_USD: Final = "cost_usd"
WALL_S: Final = "wall_s"
BUDGET_QUERIES: Final = "budget_queries"
BUDGET_TOKENS: Final = "budget_tokens"
BUDGET_USD: Final = "budget_usd"
STOP_REASON: Final = "stop_reason"
BUDGET_SHORT: Final = "budget_short"
"""The campaign stopped before spending its budget (pool exhausted, keys refused, ...); in
seed means, the share of seeds that did."""

# ----------------------------------------------------------------------- attacker compute
SIM_S: Final = "sim_s"
"""The campaign's simulated length, seconds (``None``/``nan`` on the wall clock)."""
TRAIN_STEPS: Final = "train_steps"
"""Optimiser steps (or solver iterations) the student ran."""
CONVERGED: Final = "converged"
"""The student's training reached a plateau (``False``: more compute would have helped)."""
UNCONVERGED: Final = "unconverged"
"""In seed means: the share of seeds whose student did not converge (``nan`` when no record
says)."""

# ----------------------------------------------------------------------------- provenance
SCENARIO_NAME: Final = "scenario_name"
SCENARIO_PATH: Final = "scenario_path"
SCENARIO_HASH: Final = "scenario_hash"
GIT_SHA: Final = "git_sha"
GIT_DIRTY: Final = "git_dirty"
EXTRACTBENCH_VERSION: Final = "extractbench_version"
PYTHON: Final = "python"
PLATFORM: Final = "platform"
PROVENANCE_COLUMNS: Final = (SCENARIO_NAME, SCENARIO_PATH, SCENARIO_HASH, GIT_SHA, GIT_DIRTY,
                             EXTRACTBENCH_VERSION, PYTHON, PLATFORM)

# ---------------------------------------------------------------------- the defender's side
UTILITY: Final = "utility"
DEFENDED_SCORE: Final = "defended_score"
FPR: Final = "fpr"
TPR: Final = "tpr"
BENIGN_KEYS: Final = "benign_keys"
BENIGN_FLAGGED_KEYS: Final = "benign_flagged_keys"
HARMED_RATE: Final = "harmed_rate"
"""Benign keys any defense acted on (flag, refusal, throttle, degraded answer, something
asked for removed) / benign keys."""
BENIGN_HARMED_KEYS: Final = "benign_harmed_keys"
BENIGN_COHORTS: Final = "benign_cohorts"
"""Per benign cohort: keys, queries, flagged and harmed keys, received score, utility (a JSON
object in the cells frame)."""
FLAGGED_AT: Final = "flagged_at"
FLAGGED_FRAC: Final = "flagged_frac"
"""Share of seeds that were flagged."""
FLAGGED_CELLS: Final = "flagged_cells"
TRANSFER_AT_FLAG: Final = "transfer_at_flag"
WATERMARK_Z: Final = "watermark_z"
WATERMARK_CONTROL_Z: Final = "watermark_control_z"
FLAG_SIM_S: Final = "flag_sim_s"
"""Simulated seconds from the campaign's start to the first flag of an attacker key."""

# ----------------------------------------- detector calibration (extractbench.measure.calibration)
CALIBRATION: Final = "calibration"
"""The record's per-test calibration (a JSON object in the cells frame)."""
CAL_TEST: Final = "cal_test"
"""The detector test whose figures the cell's ``tpr_1 ... queries_5`` are: the one with the
highest ``auc_tested`` (:func:`~extractbench.report.calibration.best_test`)."""
TPR_1: Final = "tpr_1"
"""Attacker keys above the test's threshold calibrated to 1% FPR on other benign streams."""
TPR_5: Final = "tpr_5"
FPR_1: Final = "fpr_1"
"""The cell's own benign keys above the 1% threshold: the realised rate."""
FPR_5: Final = "fpr_5"
AUC_CAL: Final = "auc_cal"
"""ROC AUC of the test's statistic, attacker keys against the cell's benign keys."""
AUC_TESTED: Final = "auc_tested"
"""The same against only the benign keys the test computed a statistic for."""
BENIGN_TESTED: Final = "benign_tested"
QUERIES_5: Final = "queries_5"
"""Attacker queries until its first key crossed the 5% threshold (``nan``: never)."""
CALIBRATION_FIGURES: Final = (TPR_1, TPR_5, FPR_1, FPR_5, AUC_CAL, AUC_TESTED, BENIGN_TESTED,
                              QUERIES_5)
"""The per-test figures a cell carries as columns (``auc`` of the record is ``auc_cal``)."""

# ------------------------------------------------------- simulated time to 50% transfer
HALF_SIM_S: Final = "half_sim_s"
"""Simulated seconds of the first harvest prefix whose student reached 50% transfer: an
upper bound on the time to 50% (``nan``: not reached or not measured)."""
HALF_QUERIES: Final = "half_queries"
PREFIX_POINTS: Final = "prefix_points"
"""Points of the record's ``prefix_curve`` (0: the time to 50% was not measured)."""

# ------------------------------------------------------------------ the hydra detector
HYDRA_PREFIX: Final = "hydra_"
HYDRA_FIGURES: Final = ("attacker_keys", "attacker_flagged", "benign_keys", "benign_flagged")
"""The hydra sweep figures a cell carries as ``hydra_<name>`` columns."""

OPTIONAL_NUMBERS: Final = (
    UTILITY, DEFENDED_SCORE, FPR, TPR, FLAGGED_AT,
    TRANSFER_AT_FLAG, f"{TRANSFER_AT_FLAG}_low", f"{TRANSFER_AT_FLAG}_high",
    WATERMARK_Z, WATERMARK_CONTROL_Z,
)
"""Optional per-cell numbers that may appear on records (DESIGN.md "Metrics"), averaged over
seeds when the frame has them (``flagged_at``: over the seeds that were flagged)."""

# ------------------------------------------------------------------------------ seed means
N_SEEDS: Final = "n_seeds"
X_QUERIES: Final = "x_queries"
"""A budget's x: the queries actually spent (seed mean), whatever the budget's limit."""
X_USD: Final = "x_usd"
"""The dollars actually spent (seed mean)."""
SERIES: Final = "series"
"""A plot's line label: the profile, or ``profile · student`` with several students."""

# ----------------------------------------------------------------------------- leaderboard
RANK: Final = "rank"
RANK_LABEL: Final = "rank_label"
RANKED: Final = "ranked"
UNRANKED_REASON: Final = "unranked_reason"
RESISTANCE: Final = "resistance"
BUDGET_MAX: Final = "budget_max"
WORST_ATTACK: Final = "worst_attack"
WORST_STUDENT: Final = "worst_student"
AUC: Final = "auc"
Q50_QUERIES: Final = "q50_queries"
Q50_USD: Final = "q50_usd"
Q50_STATUS: Final = "q50_status"
N_CELLS: Final = "n_cells"
COMPLETE: Final = "complete"
"""Measured on every (attack, budget, seed) of the ranking set."""
MISSING: Final = "missing"
"""What an incomplete profile was not measured on, in words."""

WC_PREFIX: Final = "wc_"
WC_SUFFIXES: Final = ("", "_low", "_high", "_attack", "_student", "_queries", "_limit",
                      "_short", "_unconverged")
"""The columns of each budget: worst-case transfer, its CI, the attack and student that
achieved it, the queries it spent (the budget's x), the budget's query limit, whether the
campaign stopped before spending its budget, and the share of seeds whose student did not
converge (a worst case a longer-training attacker could raise)."""


def low(name: str) -> str:
    """The lower-bound column of estimate ``name``."""
    return f"{name}_low"


def high(name: str) -> str:
    """The upper-bound column of estimate ``name``."""
    return f"{name}_high"


def wc(label: str, suffix: str = "") -> str:
    """The worst-case column of budget ``label`` (``suffix`` one of :data:`WC_SUFFIXES`)."""
    return f"{WC_PREFIX}{label}{suffix}"
