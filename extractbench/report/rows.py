"""The analysis' typed rows: one :class:`ProfileSummary` per leaderboard row (a profile, or a
profile on one task) and one :class:`DetectionRow` per (profile, attack) of the detection
table. Each turns into the flat columns of :mod:`extractbench.report.columns`.

Missing numbers are ``nan``; a part the records do not carry at all (no utility measured, no
detector) is ``None``, and its columns are then absent from the table rather than empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from extractbench.report import columns as c
from extractbench.report.calibration import Calibrated, SimTimes

__all__ = [
    "Cohort",
    "Detection",
    "DetectionRow",
    "Estimate",
    "Fpr",
    "Harmed",
    "ProfileSummary",
    "Utility",
    "WorstPoint",
]

NAN = math.nan


@dataclass(frozen=True)
class Estimate:
    """A number with its 95% CI."""

    value: float
    """The point estimate (``nan`` when not measured)."""
    low: float = NAN
    """Lower CI bound (``nan``: no interval)."""
    high: float = NAN
    """Upper CI bound (``nan``: no interval; ``inf`` for a crossing never reached)."""

    def columns(self, name: str) -> dict[str, object]:
        """``{name, name_low, name_high}``."""
        return {name: self.value, c.low(name): self.low, c.high(name): self.high}


@dataclass(frozen=True)
class WorstPoint:
    """The worst case over attacks at one budget."""

    budget_label: str
    """The budget, e.g. ``q1000``."""
    transfer: Estimate
    """Seed-mean transfer of the winning (attack, student), with that cell's CI."""
    attack: str
    """The attack that achieved it (``task:attack, ...`` when averaged over tasks that
    disagree; empty when nothing was measured)."""
    student: str
    """The student recipe that achieved it."""
    x_queries: float
    """The queries the winning cell actually spent (seed mean): the budget's x."""
    limit: float = NAN
    """The budget's query limit (``nan`` when it is in tokens or dollars)."""
    short: float = 0.0
    """Share of the winning cell's seeds that stopped before spending the budget (attack pool
    exhausted, keys refused, ...)."""
    unconverged: float = NAN
    """Share of the winning cell's seeds whose student did not converge (``nan``: not
    recorded): a worst case an attacker with more compute could raise."""

    def columns(self) -> dict[str, object]:
        """The ``wc_<label>...`` columns."""
        label = self.budget_label
        return {c.wc(label): self.transfer.value, c.wc(label, "_low"): self.transfer.low,
                c.wc(label, "_high"): self.transfer.high, c.wc(label, "_attack"): self.attack,
                c.wc(label, "_student"): self.student, c.wc(label, "_queries"): self.x_queries,
                c.wc(label, "_limit"): self.limit, c.wc(label, "_short"): self.short,
                c.wc(label, "_unconverged"): self.unconverged}


@dataclass(frozen=True)
class Utility:
    """Defended / teacher held-out score for benign users, with a CI over held-out items."""

    value: float
    """Mean over (task, seed) held-out sets."""
    low: float | None
    """Lower CI bound; ``None`` when no bootstrap was run."""
    high: float | None
    """Upper CI bound; ``None`` when no bootstrap was run."""
    defended_score: float | None
    """Mean held-out score of the defended profile, when recorded."""

    def columns(self) -> dict[str, object]:
        """``utility(_low/_high)`` and ``defended_score``, the ones measured."""
        out: dict[str, object] = {c.UTILITY: self.value}
        if self.low is not None and self.high is not None:
            out.update({c.low(c.UTILITY): self.low, c.high(c.UTILITY): self.high})
        if self.defended_score is not None:
            out[c.DEFENDED_SCORE] = self.defended_score
        return out


@dataclass(frozen=True)
class Fpr:
    """False-positive rate: flagged benign keys / benign keys, pooled over the cells."""

    value: float
    """The pooled rate (or the mean recorded ``fpr`` when no keys were counted)."""
    low: float | None = None
    """Wilson lower bound; ``None`` when no keys were counted."""
    high: float | None = None
    """Wilson upper bound; ``None`` when no keys were counted."""
    benign_keys: int | None = None
    """Benign keys counted; ``None`` when none were."""

    def columns(self) -> dict[str, object]:
        """``fpr(_low/_high)`` and ``benign_keys``, the ones measured."""
        if self.benign_keys is None:
            return {c.FPR: self.value}
        return {c.FPR: self.value, c.low(c.FPR): self.low, c.high(c.FPR): self.high,
                c.BENIGN_KEYS: self.benign_keys}


@dataclass(frozen=True)
class Harmed:
    """Harmed-key rate: benign keys any defense acted on / benign keys, pooled over the
    cells, with a Wilson interval."""

    value: float
    low: float
    high: float
    benign_keys: int

    def columns(self) -> dict[str, object]:
        """``harmed_rate(_low/_high)``."""
        return {c.HARMED_RATE: self.value, c.low(c.HARMED_RATE): self.low,
                c.high(c.HARMED_RATE): self.high}


@dataclass(frozen=True)
class Cohort:
    """One benign cohort over a profile's cells: what it kept and how many of its keys a
    defense acted on."""

    name: str
    """The cohort (``""``: the scenario's single cohort)."""
    utility: float
    """What the cohort received / what the teacher gives: the mean over its users (pooled over
    the cells), or over the cells for records without ``user_utility`` (``nan``: none)."""
    harmed: Harmed
    """Its harmed keys / its keys, pooled over the cells, with a Wilson interval."""
    utility_low: float = math.nan
    utility_high: float = math.nan
    """A bootstrap 95% interval of the utility (``nan``: one user or cell)."""
    over: str = "users"
    """What the utility's interval resamples: ``users`` or ``cells``."""
    mixed: tuple[tuple[str, float], ...] = ()
    """Per other task the cohort also asked about (its ``mix``): its utility there, the mean
    over the cells."""

    def text(self) -> str:
        """``heavy 0.62 [0.50, 0.74], harmed 100% [34%, 100%] of 2``: the utility's bootstrap
        interval, the harmed share's Wilson 95% interval over the cohort's keys pooled over
        the cells."""
        u = "–" if math.isnan(self.utility) else f"{self.utility:.2f}"
        if not (math.isnan(self.utility_low) or math.isnan(self.utility_high)):
            u += f" [{self.utility_low:.2f}, {self.utility_high:.2f}]"
            if self.over != "users":
                u += " over cells"
        if self.mixed:
            u += " (also " + ", ".join(f"{k} {v:.2f}" for k, v in self.mixed) + ")"
        h = self.harmed
        return (f"{self.name or 'users'} {u}, harmed {h.value:.0%} [{h.low:.0%}, {h.high:.0%}]"
                f" of {h.benign_keys}")


@dataclass(frozen=True)
class Detection:
    """Detection and attribution of the worst-case attacker at the largest common budget."""

    flagged_at: Estimate | None
    """Mean first-flag query index over the seeds it was flagged in (CI from 3 seeds);
    ``None`` when no cell of the board was ever flagged."""
    flagged_frac: float
    """Share of the worst-case attacker's seeds that were flagged."""
    flagged_cells: str
    """``flagged/all`` over every cell of the profile."""
    transfer_at_flag: Estimate | None
    """Transfer of a student trained on the pre-flag harvest, when recorded."""
    watermark_z: Estimate | None
    """Watermark z on the worst-case student's outputs, when recorded."""
    watermark_control_z: Estimate | None
    """The same on a clean control student, when recorded."""

    def columns(self) -> dict[str, object]:
        """The ``flagged_*``, ``transfer_at_flag*`` and ``watermark*`` columns measured."""
        out: dict[str, object] = {}
        if self.flagged_at is not None:
            out.update(self.flagged_at.columns(c.FLAGGED_AT))
            out.update({c.FLAGGED_FRAC: self.flagged_frac, c.FLAGGED_CELLS: self.flagged_cells})
            if self.transfer_at_flag is not None:
                out.update(self.transfer_at_flag.columns(c.TRANSFER_AT_FLAG))
        for name, z in ((c.WATERMARK_Z, self.watermark_z),
                        (c.WATERMARK_CONTROL_Z, self.watermark_control_z)):
            if z is not None:
                out.update(z.columns(name))
        return out


@dataclass(frozen=True)
class ProfileSummary:
    """One leaderboard row: a profile (or a profile on one task) against its worst case."""

    keys: dict[str, str]
    """``{profile}`` or ``{profile, task}`` (the overall row's task lists the tasks)."""
    curve: tuple[WorstPoint, ...]
    """The worst case over the ranking set at each common budget, smallest budget first."""
    budget_max: str
    """The largest common budget (empty when there is none)."""
    resistance: Estimate
    """1 - worst-case transfer at ``budget_max``; CI ``1 - high, 1 - low``; ``nan`` when not
    measured there."""
    worst_attack: str
    """The attack behind the worst case at ``budget_max``."""
    worst_student: str
    """The student recipe behind it."""
    auc: Estimate
    """Area under worst-case transfer vs log10(queries spent) over the common budgets,
    divided by their log-range; CI from the curve bootstrap; ``nan`` unless every common
    budget is measured."""
    q50_queries: Estimate
    """Queries spent to reach 50% transfer (``nan`` when not reached or not measured; bounds
    ``inf`` when the bootstrap does not reach it)."""
    q50_usd: Estimate
    """Dollars to reach 50% transfer, interpolated like ``q50_queries``."""
    q50_status: str
    """``interpolated``, ``at_first_budget`` (at or below the smallest budget),
    ``not_reached`` (above the largest) or ``not_measured`` (some common budget is not)."""
    teacher_score: float
    """Mean held-out score of the undefended teacher."""
    n_cells: int
    """ok cells (seeds included) the row is computed from."""
    utility: Utility | None
    """The benign users' utility, when measured."""
    fpr: Fpr | None
    """The false-positive rate, when measured."""
    detection: Detection | None
    """Detection of the worst attacker, when measured at the largest common budget."""
    complete: bool = True
    """Measured on the whole ranking set (every attack, budget and seed of it)."""
    missing: str = ""
    """What of the ranking set it was not measured on, in words (empty when complete)."""
    ranked: bool = True
    """Ranked by resistance: complete, and utility at least the threshold (or no utility
    measured on any profile)."""
    unranked_reason: str = ""
    """Why not ranked, e.g. ``incomplete: not measured against stealth at q1000`` or
    ``utility 0.50 < 0.90``."""
    rank: int | None = None
    """1-based rank; tied rows share the rank of the first of the tie."""
    rank_label: str = ""
    """The rank as shown: ``=k`` for a tie, empty when not ranked."""
    harmed: Harmed | None = None
    """The harmed-key rate, when the records count harms."""
    cohorts: tuple[Cohort, ...] = ()
    """Per benign cohort, when the records carry cohorts."""

    def columns(self) -> dict[str, object]:
        """The row's leaderboard columns (unordered: the table orders them)."""
        out: dict[str, object] = dict(self.keys)
        for point in self.curve:
            out.update(point.columns())
        out.update({c.BUDGET_MAX: self.budget_max, **self.resistance.columns(c.RESISTANCE),
                    c.WORST_ATTACK: self.worst_attack, c.WORST_STUDENT: self.worst_student,
                    **self.auc.columns(c.AUC), **self.q50_queries.columns(c.Q50_QUERIES),
                    **self.q50_usd.columns(c.Q50_USD), c.Q50_STATUS: self.q50_status,
                    c.TEACHER_SCORE: self.teacher_score, c.N_CELLS: self.n_cells})
        for part in (self.utility, self.fpr, self.harmed, self.detection):
            if part is not None:
                out.update(part.columns())
        if self.cohorts:
            out[c.BENIGN_COHORTS] = "; ".join(k.text() for k in self.cohorts)
        out.update({c.COMPLETE: self.complete, c.MISSING: self.missing,
                    c.RANKED: self.ranked, c.UNRANKED_REASON: self.unranked_reason,
                    c.RANK: self.rank, c.RANK_LABEL: self.rank_label})
        return out


@dataclass(frozen=True)
class DetectionRow:
    """Detection of one (profile, attack) at that profile's largest budget: plain means over
    the seeds (and tasks) of the cells' own numbers."""

    profile: str
    """The profile."""
    attack: str
    """The attack."""
    budgets: tuple[str, ...]
    """The budget labels at the largest x (one, unless budgets of different kinds tie)."""
    transfer: float
    """Mean transfer of those cells."""
    flagged: int
    """How many of those cells were flagged."""
    cells: int
    """How many cells (seeds) there are."""
    flagged_at: float
    """Mean first-flag query index over the flagged cells (``nan`` when none)."""
    transfer_at_flag: Estimate | None
    """Mean pre-flag-harvest transfer with mean bounds, when recorded."""
    watermark_z: float
    """Mean watermark z (``nan`` when not recorded)."""
    watermark_control_z: float
    """Mean control z (``nan`` when not recorded)."""
    calibration: Calibrated | None = None
    """The detector's calibration (its best test per cell), when some cell carries it."""
    times: SimTimes | None = None
    """Simulated time to the first flag and to 50% transfer, when some cell ran on a
    simulated clock."""
