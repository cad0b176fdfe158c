"""The run's task instances, one per (task key, seed), built once and shared by every cell."""

from __future__ import annotations

from extractbench.config.scenario import Scenario
from extractbench.tasks import TASKS, Task

__all__ = ["PUBLIC_EXAMPLES", "TaskBank", "public_examples"]


class TaskBank:
    """Builds each scenario task at a seed once (its splits are then fixed for the run)."""

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self._tasks: dict[tuple[str, int], Task] = {}

    def get(self, key: str, seed: int) -> Task:
        if (key, seed) not in self._tasks:
            spec = self.sc.tasks[key]
            sizes = {"attack_pool": spec.attack_pool, "heldout": spec.heldout,
                     "benign": spec.benign}
            self._tasks[(key, seed)] = TASKS.get(spec.family)(seed, sizes, **spec.params)
        return self._tasks[(key, seed)]

    def reference_model(self, key: str) -> str:
        """The task family's reference teacher (the model an endpoint without ``model:``
        serves for this task)."""
        task = self.get(key, self.sc.seeds[0])
        return str(getattr(task, "reference_model", "arith-ref"))


PUBLIC_EXAMPLES = 8
"""How many examples of a task an attacker has without the endpoint."""


def public_examples(task: Task, n: int = PUBLIC_EXAMPLES) -> list[str]:
    """What an attacker without the pool knows of a task: a few prompts of the kind its
    documentation shows (drawn from the benign split, never from held-out)."""
    return [i.prompt for i in task.split("benign")[:n]]
