"""``watermark``: a green-list watermark at sampling time, so a stolen student can be traced.

The idea modelled: Kirchenbauer et al. 2023 (see :mod:`extractbench.reference.watermark`), used for
attribution: a student trained on watermarked outputs may reproduce the teacher's green-token
preference, and the owner can test a suspect model's outputs with the secret ``key``
(e.g. "radioactivity" of watermarked text, Sander et al. 2024). It does not reduce what the
attacker learns; it is worth what the test tells apart — which is why every figure comes with
the same test on a control student trained on unwatermarked outputs.

Parameters: ``key`` (the secret, an integer 0..2^62), ``gamma`` (green share of the
vocabulary, 0.01..0.99), ``delta`` (logit bias on green tokens, in (0, 20]; larger is easier
to detect and costs more accuracy). Sampling time only: works on the reference models, not in
proxy mode.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from extractbench.defenses import params as P
from extractbench.defenses.base import DEFENSES, RequestContext
from extractbench.defenses.moved import ChangesAnswers, Moves
from extractbench.reference.watermark import GreenList, WatermarkTest
from extractbench.registry import PluginParams
from extractbench.types import LogitsProcessor

NAME = "watermark"


class WatermarkParams(PluginParams):
    """The parameters of ``watermark``."""

    key: int = Field(default=15485863, ge=0, le=2**62, description="the secret key, 0..2^62")
    gamma: float = Field(default=0.5, ge=0.01, le=0.99, description="green share of the "
                         "vocabulary, 0.01..0.99")
    delta: float = Field(default=2.0, gt=0, le=20, description="logit bias on green tokens, "
                         "(0, 20] (larger is easier to detect and costs more accuracy)")


@DEFENSES.register(NAME, params=WatermarkParams)
class Watermark(ChangesAnswers):
    """Kirchenbauer green-list watermark at sampling time (reference models only)."""

    name = NAME

    @property
    def ordered(self) -> bool:
        """Each request on its own."""
        return False

    def __init__(self, *, key: int = 15485863, gamma: float = 0.5, delta: float = 2.0) -> None:
        self.green_list = GreenList(
            key=P.integer(NAME, "key", key, 0, 2**62),
            gamma=P.number(NAME, "gamma", gamma, 0, 1, lo_open=True, hi_open=True),
            delta=P.number(NAME, "delta", delta, 0, 20, lo_open=True),
        )
        self._moves = Moves()

    def logits_processors(self, ctx: RequestContext) -> list[LogitsProcessor]:
        return [self.watched(ctx, self.green_list)]

    def detect(self, texts: Iterable[str], unique: bool = False) -> WatermarkTest:
        """The detection test with this watermark's key on ``texts`` (responses only)."""
        return self.green_list.detect(texts, unique=unique)
