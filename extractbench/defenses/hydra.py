"""``hydra``: a cross-account detector that links API keys sending alike, for campaigns spread
over many accounts ("hydra clusters").

The idea modelled: vendors' reports of 2026 describe distillation campaigns run through
thousands of fraudulent accounts, each below any per-key limit, found by linking accounts
whose traffic looks alike. This detector works like such a sweep, after the fact: it changes
no request (nothing in-line looks across keys, so a defended cell stays reproducible); the
benchmark runs it over the cell's traffic (:mod:`extractbench.measure.hydra`) at every
``sweep_s`` of simulated time, as a vendor's periodic job would, and reports which keys it
linked and when.

Two keys are linked when both

- **content**: their prompts have twins in each other's: each of (up to 20, evenly spaced)
  sampled prompts' best cosine among the other key's samples, on hashed character n-grams
  with digits abstracted (one template with other numbers is a twin), averaged both ways, is
  at least ``content_min``;
- **timing**: their request rates are within a factor ``rate_ratio`` of each other and their
  active periods overlap by at least ``overlap_min`` (intersection over union);

and each has sent at least ``min_queries``. Keys joined by links form clusters; every key in a
cluster of at least ``min_cluster`` keys is flagged. Legitimate users who send the same kind
of prompts at the same pace are linked too: that is its false-positive rate.
"""

from __future__ import annotations

from pydantic import Field

from extractbench.defenses import params as P
from extractbench.defenses.base import DEFENSES, Defense
from extractbench.registry import PluginParams

NAME = "hydra"


class HydraParams(PluginParams):
    """The parameters of ``hydra``."""

    content_min: float = Field(default=0.9, ge=0, le=1, description="how alike two keys' "
                               "prompts must be to link them (mean best cosine), 0..1")
    rate_ratio: float = Field(default=2.0, ge=1, le=1000, description="most ratio between two "
                              "linked keys' request rates, 1..1000")
    overlap_min: float = Field(default=0.5, ge=0, le=1, description="least overlap of two "
                               "linked keys' active periods (intersection over union), 0..1")
    min_queries: int = Field(default=10, ge=1, le=10**6, description="requests a key sends "
                             "before it is compared, 1..10^6")
    min_cluster: int = Field(default=2, ge=2, le=10**6, description="keys in a cluster that "
                             "flags them all, 2..10^6")
    sweep_s: float = Field(default=3600.0, gt=0, le=31_536_000, description="simulated seconds "
                           "between two sweeps, (0, 31536000]")
    ngram: int = Field(default=3, ge=1, le=8, description="character n-gram length, 1..8")
    dim: int = Field(default=256, ge=16, le=65536, description="hashed feature dimensions, "
                     "16..65536")


@DEFENSES.register(NAME, params=HydraParams)
class Hydra(Defense):
    """Links keys sending alike (content and timing), swept after the fact; changes nothing
    in-line."""

    name = NAME

    @property
    def ordered(self) -> bool:
        """Nothing in-line: each request on its own."""
        return False

    def __init__(self, *, content_min: float = 0.9, rate_ratio: float = 2.0,
                 overlap_min: float = 0.5, min_queries: int = 10, min_cluster: int = 2,
                 sweep_s: float = 3600.0, ngram: int = 3, dim: int = 256) -> None:
        self.content_min = P.number(NAME, "content_min", content_min, 0, 1)
        self.rate_ratio = P.number(NAME, "rate_ratio", rate_ratio, 1, 1000)
        self.overlap_min = P.number(NAME, "overlap_min", overlap_min, 0, 1)
        self.min_queries = P.integer(NAME, "min_queries", min_queries, 1)
        self.min_cluster = P.integer(NAME, "min_cluster", min_cluster, 2)
        self.sweep_s = P.number(NAME, "sweep_s", sweep_s, 0, lo_open=True)
        self.ngram = P.integer(NAME, "ngram", ngram, 1, 8)
        self.dim = P.integer(NAME, "dim", dim, 16, 65536)
