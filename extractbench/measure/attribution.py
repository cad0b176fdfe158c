"""Attribution on a profile with a ``watermark`` defense: the watermark test on the student's
held-out outputs, always next to the same test on a clean **control** student.

The control is the same recipe and seed, trained on the same prompts answered greedily by the
unwatermarked teacher. Without it a z-score says nothing: short, repetitive outputs drift from
0 with no watermark at all. Repeated (previous, token) pairs count once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from extractbench.attacks.base import train_prompt_map
from extractbench.config.scenario import StudentSpec
from extractbench.logs.harvest import Entry, ResponseEntry
from extractbench.measure.fit import fit_and_score
from extractbench.students import TrainPair
from extractbench.tasks import Task

__all__ = ["watermark_fields"]


def watermark_fields(defenses: Sequence[Any], teacher: Callable[[], Any],
                     entries: Sequence[Entry], predictions: list[str], task: Task,
                     spec: StudentSpec, seed: int,
                     status: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The record's ``watermark_*`` fields, or ``{}`` when no defense is a watermark.
    ``teacher()`` gives the clean reference model (a TinyLM) the endpoint serves."""
    from extractbench.defenses.watermark import Watermark
    from extractbench.reference.generation import greedy

    marks = [d for d in defenses if isinstance(d, Watermark)]
    if not marks:
        return {}
    mark = marks[0]
    test = mark.detect(predictions, unique=True)
    status("training the clean control student")
    remap = train_prompt_map(entries)
    answered = sorted((e for e in entries if isinstance(e, ResponseEntry)),
                      key=lambda e: e.index)
    sent = [(remap.get(e.index, e.request.prompt), e.request.prompt,
             e.request.params.max_tokens) for e in answered]
    sent = [s for s in sent if s[0] is not None]
    room = max((m for _, _, m in sent), default=task.max_answer_tokens)
    clean = greedy(teacher(), [p for _, p, _ in sent], room)
    pairs = [TrainPair(prompt=str(t), response=r)
             for (t, _, _), r in zip(sent, clean, strict=True)]
    control = fit_and_score(spec, pairs, seed, task)
    ctest = mark.detect(control.predictions, unique=True)
    return dict(watermark_z=test.z, watermark_p=test.p,
                watermark_control_z=ctest.z, watermark_control_p=ctest.p)
