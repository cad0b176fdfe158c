"""Task families (capabilities an attacker tries to steal), registered by name."""

from extractbench.tasks.base import SPLITS, TASKS, SplitName, Task, TaskItem, prompt_hash

__all__ = ["SPLITS", "TASKS", "SplitName", "Task", "TaskItem", "prompt_hash"]
