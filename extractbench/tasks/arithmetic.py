"""Multi-digit arithmetic posed in natural language ("What is 47 + 38? Answer with the number
only."). Every problem (a, op, b) of the configured operand width lands in exactly one split."""

from __future__ import annotations

import random
import re

from extractbench.tasks.base import TASKS, SplitName, TaskItem

TEMPLATES = (
    "What is {a} {op} {b}? Answer with the number only.",
    "Compute {a} {op} {b}. Answer with the number only.",
    "Calculate {a} {op} {b} and answer with the number only.",
)
_NUM = re.compile(r"-?\d[\d,]*")


def solve(a: int, op: str, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    raise ValueError(f"unsupported operator {op!r}")


class Arithmetic:
    """Multi-digit arithmetic: parameters ``digits`` (operand width) and ``ops``."""

    def __init__(self, seed: int, sizes: dict[str, int], digits: int = 2,
                 ops: tuple[str, ...] | list[str] = ("+",)) -> None:
        if digits < 1 or digits > 4:
            raise ValueError("digits must be between 1 and 4")
        bad = [o for o in ops if o not in "+-*"]
        if bad or not ops:
            raise ValueError(f"ops must be a non-empty list of '+', '-', '*' (got {list(ops)})")
        self.name = "arithmetic"
        self.digits = digits
        self.ops = tuple(ops)
        self.max_answer_tokens = 2 * digits + 3
        lo, hi = (10 ** (digits - 1) if digits > 1 else 0), 10**digits
        rng = random.Random(seed)
        problems = [(a, op, b) for op in self.ops for a in range(lo, hi) for b in range(lo, hi)
                    if op != "-" or a >= b]
        rng.shuffle(problems)
        need = {s: int(sizes.get(s, 0)) for s in ("heldout", "benign", "attack_pool")}
        total = sum(need.values())
        if total > len(problems):
            raise ValueError(
                f"splits ask for {total} problems but digits={digits}, ops={list(ops)} has only "
                f"{len(problems)}"
            )
        self._splits: dict[str, list[TaskItem]] = {}
        start = 0
        for split in ("heldout", "benign", "attack_pool"):
            chunk = problems[start : start + need[split]]
            start += need[split]
            self._splits[split] = [self._item(a, op, b, rng) for a, op, b in chunk]

    @staticmethod
    def _item(a: int, op: str, b: int, rng: random.Random) -> TaskItem:
        prompt = rng.choice(TEMPLATES).format(a=a, op=op, b=b)
        return TaskItem(key=f"{a}{op}{b}", prompt=prompt, answer=str(solve(a, op, b)))

    def split(self, name: SplitName) -> list[TaskItem]:
        return list(self._splits[name])

    def extract(self, text: str) -> str | None:
        nums = _NUM.findall(text.replace("−", "-"))
        if not nums:
            return None
        return nums[-1].replace(",", "")

    def score(self, prediction: str | None, item: TaskItem) -> float:
        if prediction is None:
            return 0.0
        try:
            return float(int(prediction) == int(item.answer))
        except ValueError:
            return 0.0


@TASKS.register("arithmetic")
def make_arithmetic(seed: int, sizes: dict[str, int], **params: object) -> Arithmetic:
    """Multi-digit arithmetic in natural language; params: digits, ops."""
    return Arithmetic(seed, sizes, **params)  # type: ignore[arg-type]
