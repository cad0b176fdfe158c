"""``watermark`` on the reference endpoint: detectable on the teacher's own sampled output
(a tiny random model at temperature 1, where the bias shifts sampling), not on unwatermarked
output of the same model, nor with another key."""

from __future__ import annotations

import openai
import pytest

from extractbench.defenses import DefenseStack
from extractbench.defenses.watermark import Watermark
from extractbench.reference.lm import TinyLM
from extractbench.reference.watermark import detect
from extractbench.serving import RunningServer, ServedModel, create_app

KEY = "fake-wm-0-4a4b4c4d"
SECRET = 424242


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread


# Printable ASCII only: other bytes do not survive decoding to text and back unchanged.
NOT_PRINTABLE = {str(b): -100 for b in [*range(32), *range(127, 256)]}


def sample(model: TinyLM, stack: DefenseStack, n: int = 16) -> list[str]:
    app = create_app({"tiny": ServedModel("tiny", model)}, {KEY: "attacker-0"}, stack)
    with RunningServer(app) as srv, openai.OpenAI(base_url=srv.openai_base_url, api_key=KEY,
                                                  max_retries=0) as c:
        return [
            str(c.chat.completions.create(
                model="tiny", max_tokens=32, temperature=1.0, seed=s, logit_bias=NOT_PRINTABLE,
                messages=[{"role": "user", "content": f"Tell me something, #{s}"}],
            ).choices[0].message.content)
            for s in range(n)
        ]


def test_watermark_is_detectable_on_the_teachers_output_only(tiny_lm: TinyLM) -> None:
    wm = Watermark(key=SECRET, gamma=0.5, delta=2.0)
    marked = sample(tiny_lm, DefenseStack([wm]))
    clean = sample(tiny_lm, DefenseStack())
    on_marked = wm.detect(marked)
    assert on_marked.scored > 200
    assert on_marked.z > 6 and on_marked.p < 1e-6
    assert on_marked.green_fraction > 0.7
    assert abs(wm.detect(clean).z) < 3
    assert abs(detect(marked, key=SECRET + 1).z) < 3  # the wrong key sees nothing


def test_bad_params() -> None:
    with pytest.raises(ValueError, match="gamma must be a number in \\(0, 1\\)"):
        Watermark(gamma=0)
    with pytest.raises(ValueError, match="delta must be a number in \\(0, 20\\]"):
        Watermark(delta=0)
    with pytest.raises(ValueError, match="key must be an integer"):
        Watermark(key=1.5)  # type: ignore[arg-type]
