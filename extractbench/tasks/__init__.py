from extractbench.tasks.base import SPLITS, TASKS, SplitName, Task, TaskItem, prompt_hash
from extractbench.tasks.splits import HeldOutContent

__all__ = ["SPLITS", "TASKS", "HeldOutContent", "SplitName", "Task", "TaskItem", "prompt_hash"]
