"""The typed row every cell writes: what was measured and everything that reproduces it.

Metric definitions follow DESIGN.md ("Metrics"). A run directory holds ``records.jsonl``
(one :class:`CellRecord` per line, append-only) next to the harvest logs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RECORD_VERSION = 1


class Provenance(BaseModel):
    """What reproduces a number: scenario identity, code identity, environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario_name: str
    scenario_path: str
    scenario_hash: str = Field(description="sha256 of the scenario's canonical JSON")
    git_sha: str = Field(description="commit of the extractbench checkout, or 'unknown'")
    git_dirty: bool = False
    extractbench_version: str
    package_versions: dict[str, str]
    python: str
    platform: str
    torch_threads: int


class CohortFigures(BaseModel):
    """What one benign cohort sent and received during a defended cell."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: int = Field(description="benign keys in the cohort")
    queries: int = Field(description="requests the cohort sent")
    answered: int = Field(description="requests that got an answer")
    flagged_keys: int = Field(description="keys a defense flagged")
    harmed_keys: int = Field(description="keys any defense acted on (see harmed_rate)")
    received_score: float | None = Field(
        default=None, description="ground-truth score of what the cohort received (a refused "
        "or failed request scores 0)")
    utility: float | None = Field(
        default=None, description="received_score / the teacher's held-out score (the benign "
        "and held-out splits are drawn alike; the teacher is not asked the benign prompts)")
    user_utility: list[float] | None = Field(
        default=None, description="per key that sent, in key order: the score of what it "
        "received / the teacher's held-out score (the leaderboard bootstraps the cohort's "
        "utility over these users)")
    mixed_utility: dict[str, float] | None = Field(
        default=None, description="per other task the cohort also asked about "
        "(benign_traffic.cohorts.*.mix): what it received there / the teacher's held-out score "
        "on that task")
    prompts: Literal["matched", "customer"] | None = Field(
        default=None, description="how the cohort worded its prompts, as sent: matched (as "
        "the attack pool words them) or customer (benign_traffic.cohorts.*.prompts)")


class Interval(BaseModel):
    """A point estimate with a bootstrap confidence interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    low: float
    high: float
    level: float = 0.95


class ItemScores(BaseModel):
    """Per-held-out-item scores, so the leaderboard can re-bootstrap from the store alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    teacher: list[float]
    base: list[float]
    student: list[float]
    fidelity: list[float] = Field(description="1 when the student agrees with the teacher")
    defended: list[float] | None = Field(
        default=None, description="the defended profile's scores as a benign user sees them"
    )


class CellRecord(BaseModel):
    """One (profile, task, attack, budget, student, seed) measurement."""

    model_config = ConfigDict(extra="forbid")

    record_version: int = RECORD_VERSION
    run_id: str
    cell_id: str = Field(description="readable id: profile/task/attack/budget/student/seed")
    status: Literal["ok", "error", "skipped"]
    error: str | None = Field(default=None, description="one-line reason when not ok")

    # the cell's coordinates
    endpoint: str
    profile: str = Field(description="endpoint name + defense stack label")
    defenses: list[str] = Field(default_factory=list)
    model: str
    task: str
    attack: str
    attack_params: dict[str, object] = Field(default_factory=dict)
    knows: Literal["nothing", "kind", "params"] = Field(
        default="nothing", description="the attacker's threat model: what it knew of the "
        "defenses (the attack's `knows:` in the scenario)")
    student: str
    student_params: dict[str, object] = Field(default_factory=dict)
    budget: dict[str, float] = Field(description="limits: any of queries, tokens, usd")
    budget_label: str
    seed: int

    # capability
    n_heldout: int = 0
    heldout_overlap: int | None = Field(
        default=None, description="held-out contents (in any wording) the harvest asks about: "
        "0 (the oracle refuses such prompts)")
    teacher_score: float | None = None
    base_score: float | None = Field(
        default=None, description="the best trivial baseline's held-out score (base_kind)")
    base_kind: str | None = Field(
        default=None, description="which baseline won: 'constant' (the held-out split's most "
        "frequent answer), 'public' (the recipe trained on the task's public examples) or "
        "'nothing' (the recipe trained on no data)")
    student_score: float | None = None
    transfer: Interval | None = None
    fidelity: float | None = None
    items: ItemScores | None = None

    # the defender's side (DESIGN.md "Metrics": utility, detection, attribution)
    defended_score: float | None = Field(
        default=None, description="held-out score of the defended profile as a benign user sees it"
    )
    utility: float | None = Field(default=None, description="defended_score / teacher_score")
    benign_queries: int = Field(default=0, description="benign-* requests sent during the cell")
    benign_score: float | None = Field(
        default=None, description="mean score of what the benign-* users actually received "
        "during the cell (a blocked or failed request scores 0); unlike utility, measured on "
        "users the detector may have flagged")
    benign_keys: int = 0
    benign_flagged_keys: int = 0
    fpr: float | None = Field(default=None, description="flagged benign keys / benign keys")
    benign_harmed_keys: int = Field(default=0, description="benign keys a defense acted on at "
                                    "least once (flagged, refused, throttled, degraded, or "
                                    "something they asked for removed)")
    harmed_rate: float | None = Field(default=None, description="benign_harmed_keys / "
                                      "benign_keys")
    benign_harms: dict[str, int] = Field(default_factory=dict, description="defense actions "
                                         "on benign keys' requests, by audit event kind")
    benign_cohorts: dict[str, CohortFigures] = Field(
        default_factory=dict, description="per benign cohort (the scenario's "
        "benign_traffic.cohorts; '' for its single cohort): keys, queries, flagged and harmed "
        "keys, what it received")
    flagged_at: int | None = Field(
        default=None, description="attacker query index of the first flag, or None"
    )
    flag_reason: str | None = None
    calibration: dict[str, dict[str, float | int | None]] = Field(
        default_factory=dict, description="per detector test, calibrated on benign streams "
        "that are not the cell's (extractbench.measure.calibration): threshold_1/5 (the "
        "score at 1%/5% FPR), tpr_1/5 (attacker keys above it), fpr_1/5 (the cell's benign "
        "keys above it), auc (attacker vs the cell's benign keys), queries_5 (attacker "
        "queries until a key crossed the 5% threshold); a simulated clock only")
    hydra: dict[str, float | int | None] = Field(
        default_factory=dict, description="the hydra cross-account detector's sweeps "
        "(extractbench.measure.hydra): attacker_keys, attacker_flagged, benign_keys, "
        "benign_flagged, clusters, mixed_clusters, detected_sim_s, sweeps")
    flag_sim_s: float | None = Field(
        default=None, description="simulated seconds from the campaign's start to the first "
        "flag of an attacker key (a simulated clock only)")
    transfer_at_flag: Interval | None = Field(
        default=None, description="transfer of a student trained only on pre-flag harvest"
    )
    watermark_z: float | None = Field(default=None, description="z on the student's outputs")
    watermark_p: float | None = None
    watermark_control_z: float | None = Field(
        default=None, description="z on a control student trained on unwatermarked outputs"
    )
    watermark_control_p: float | None = None

    # what the campaign spent (as charged by the oracle)
    queries: int = 0
    failed_queries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    tokens_estimated: bool = Field(
        default=False, description="some token counts are tiktoken estimates"
    )
    cost_usd: float = Field(default=0.0, description="dollars charged, accounts included")
    accounts: int = Field(default=0, description="attacker API accounts (keys) the campaign "
                          "used and paid for")
    accounts_usd: float = Field(default=0.0, description="what those accounts cost (inside "
                                "cost_usd): accounts x the endpoint's prices.account_usd")
    harvest_pairs: int = Field(default=0, description="successful responses usable for training")
    errors_by_type: dict[str, int] = Field(default_factory=dict)
    stop_reason: str = ""

    # the attacker's compute: what training the student cost and reached
    train_steps: int | None = Field(default=None, description="optimiser steps the student ran "
                                    "(fixed per recipe, whatever the harvest size)")
    train_tokens: int | None = Field(default=None, description="target tokens the student's "
                                     "loss was taken on, over all steps")
    train_loss: float | None = Field(default=None, description="the student's final training "
                                     "loss")
    converged: bool | None = Field(default=None, description="whether the student's training "
                                   "reached a plateau (false: more compute would have helped)")

    # time
    clock: Literal["simulated", "wall"] = Field(default="wall", description="the clock the "
                                                "endpoint's defenses ran on")
    sim_s: float | None = Field(default=None, description="the campaign's simulated length, "
                                "seconds (a simulated clock only): what the attack took, "
                                "waits for rate limits and quotas included")
    prefix_curve: list[dict[str, float | int]] = Field(
        default_factory=list, description="students trained on prefixes of the harvest, in "
        "the order it was sent (cells of the ranking set on a simulated clock only): each "
        "{queries: answered queries in the prefix, sim_s: simulated seconds when the last of "
        "them was sent, transfer: the seed-mean transfer}, ascending, the whole harvest last")
    half_sim_s: float | None = Field(
        default=None, description="sim_s of the first prefix_curve point with transfer >= "
        "0.5: an upper bound on the simulated time to 50% transfer (None: not reached or "
        "not measured)")
    half_queries: int | None = Field(
        default=None, description="queries of that point (the same bound in queries)")
    wall_s: float = 0.0
    attack_s: float = 0.0
    train_s: float = 0.0
    eval_s: float = 0.0

    harvest_path: str | None = None
    provenance: Provenance
