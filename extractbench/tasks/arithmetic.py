"""Multi-step arithmetic posed in natural language ("What is 47 + 38 - 12? Answer with the
number only."). Every problem (operands and operators) lands in exactly one split.

When a prompt ends with :data:`REASONING_SUFFIX` ("Show your working."), the teacher answers
with its worked steps in a ``<reasoning>`` block and the bare number after it. Each operation
(in the usual order: multiplication first, then left to right) is worked column by column,
ones first, for ``+`` and ``-`` (carries and borrows shown), then stated whole::

    <reasoning>7+8=15; 4+3+1=8; 47 + 38 = 85</reasoning>
    85
    <reasoning>2+5=7; 1+3=4; 12 + 35 = 47 | 7-8 borrow 17-8=9; 4-1-0=3; 47 - 8 = 39</reasoning>
    39
"""

from __future__ import annotations

import itertools
import random
from typing import Literal

from pydantic import Field

from extractbench.registry import PluginParams
from extractbench.tasks.answers import REASONING_CLOSE, REASONING_OPEN, final_part, last_number
from extractbench.tasks.base import TASKS, SplitName, TaskItem, take_splits

TEMPLATES = (
    "What is {expr}? Answer with the number only.",
    "Compute {expr}. Answer with the number only.",
    "Calculate {expr} and answer with the number only.",
)
REASONING_SUFFIX = " Show your working."
REFERENCE_MODEL = "arith-cot-ref"
OPS = ("+", "-", "*")
_ENUMERATE_MAX = 300_000  # problem spaces up to this size are enumerated, larger ones sampled

Problem = tuple[tuple[int, ...], tuple[str, ...]]  # operands, operators


def solve(a: int, op: str, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    raise ValueError(f"unsupported operator {op!r}")


def steps(nums: tuple[int, ...], ops: tuple[str, ...]) -> list[tuple[int, str, int, int]]:
    """The worked steps ``(x, op, y, result)``: multiplications first, then left to right."""
    vals, rest = list(nums), list(ops)
    out: list[tuple[int, str, int, int]] = []
    for group in ("*", "+-"):
        i = 0
        while i < len(rest):
            if rest[i] in group:
                r = solve(vals[i], rest[i], vals[i + 1])
                out.append((vals[i], rest[i], vals[i + 1], r))
                vals[i : i + 2] = [r]
                del rest[i]
            else:
                i += 1
    return out


def expression(nums: tuple[int, ...], ops: tuple[str, ...]) -> str:
    parts = [str(nums[0])]
    for op, n in zip(ops, nums[1:], strict=True):
        parts += [op, str(n)]
    return " ".join(parts)


def columns(x: int, op: str, y: int) -> list[str]:
    """Column-by-column working of ``x op y`` (ones first) for ``+`` and ``-`` (``x >= y``);
    none for ``*``."""
    xs, ys = str(x)[::-1], str(y)[::-1]
    out: list[str] = []
    carry = 0
    for i in range(max(len(xs), len(ys)) if op != "*" else 0):
        dx = int(xs[i]) if i < len(xs) else 0
        dy = int(ys[i]) if i < len(ys) else 0
        if op == "+":
            total = dx + dy + carry
            out.append(f"{dx}+{dy}+1={total}" if carry else f"{dx}+{dy}={total}")
            carry = total // 10
        else:
            expr = f"{dx}-1-{dy}" if carry else f"{dx}-{dy}"
            value = dx - carry - dy
            carry = int(value < 0)
            out.append(f"{expr} borrow 1{expr}={value + 10}" if carry else f"{expr}={value}")
    return out


def worked(nums: tuple[int, ...], ops: tuple[str, ...]) -> str:
    """The teacher's answer with working: the reasoning block, then the number."""
    work = " | ".join("; ".join([*columns(x, op, y), f"{x} {op} {y} = {r}"])
                      for x, op, y, r in steps(nums, ops))
    return f"{REASONING_OPEN}{work}{REASONING_CLOSE}\n{steps(nums, ops)[-1][3]}"


def answer_of(nums: tuple[int, ...], ops: tuple[str, ...]) -> int:
    return steps(nums, ops)[-1][3]


def wants_reasoning(prompt: str) -> bool:
    """Whether a prompt asks for the working (ends with the reasoning suffix)."""
    return prompt.rstrip().endswith(REASONING_SUFFIX.strip())


def _valid(nums: tuple[int, ...], ops: tuple[str, ...]) -> bool:
    return all(r >= 0 for *_, r in steps(nums, ops))


class ArithmeticParams(PluginParams):
    """The parameters of the ``arithmetic`` family."""

    digits: int = Field(default=2, description="operand width, 1..4")
    ops: tuple[Literal["+", "-", "*"], ...] | list[Literal["+", "-", "*"]] = Field(
        default=("+",), description="operators to draw from (any of + - *)")
    terms: int = Field(default=2, description="operands per problem, 2..4")
    reference_model: str = Field(default=REFERENCE_MODEL, description="the reference teacher "
                                 "that serves it (see `extractbench list models`)")


class Arithmetic:
    """Multi-step arithmetic: ``digits`` (operand width, 1-4), ``ops`` (any of + - *) and
    ``terms`` (operands per problem, 2-4). Intermediate results are never negative."""

    name = "arithmetic"
    reasoning_suffix: str | None = REASONING_SUFFIX

    def __init__(self, seed: int, sizes: dict[str, int], digits: int = 2,
                 ops: tuple[str, ...] | list[str] = ("+",), terms: int = 2,
                 reference_model: str = REFERENCE_MODEL) -> None:
        if not isinstance(digits, int) or not 1 <= digits <= 4:
            raise ValueError(f"digits must be an integer from 1 to 4 (got {digits!r})")
        if not isinstance(terms, int) or not 2 <= terms <= 4:
            raise ValueError(f"terms must be an integer from 2 to 4 (got {terms!r})")
        if isinstance(ops, str) or not ops or any(o not in OPS for o in ops):
            raise ValueError(f"ops must be a non-empty list of '+', '-', '*' (got {ops!r})")
        self.digits, self.terms = digits, terms
        self.ops = tuple(dict.fromkeys(ops))
        self.reference_model = reference_model
        lo, hi = (10 ** (digits - 1) if digits > 1 else 0), 10**digits
        bound = (hi - 1) ** terms if "*" in self.ops else terms * (hi - 1)
        width = len(str(bound))
        self.max_answer_tokens = 2 * digits + 3 if terms == 2 else width + 3
        step = 3 * width + 8 + 24 * width  # "x op y = r | " and its columns
        self.reasoning_max_tokens = (len(REASONING_OPEN) + len(REASONING_CLOSE)
                                     + (terms - 1) * step + width + 4)
        rng = random.Random(seed)
        problems = self._problems(lo, hi, sizes, rng)
        chunks = take_splits(problems, sizes, f"digits={digits}, ops={list(self.ops)}, "
                                              f"terms={terms}")
        self._splits = {s: [self._item(p, rng) for p in c] for s, c in chunks.items()}

    def _problems(self, lo: int, hi: int, sizes: dict[str, int],
                  rng: random.Random) -> list[Problem]:
        n_ops, n_nums = len(self.ops) ** (self.terms - 1), (hi - lo) ** self.terms
        if n_ops * n_nums <= _ENUMERATE_MAX:
            problems = [
                (nums, ops)
                for ops in itertools.product(self.ops, repeat=self.terms - 1)
                for nums in itertools.product(range(lo, hi), repeat=self.terms)
                if _valid(nums, ops)
            ]
            rng.shuffle(problems)
            return problems
        want = sum(max(0, int(v)) for v in sizes.values())
        seen: dict[Problem, None] = {}
        for _ in range(20 * want + 1000):
            if len(seen) >= want:
                break
            ops = tuple(rng.choice(self.ops) for _ in range(self.terms - 1))
            nums = tuple(rng.randrange(lo, hi) for _ in range(self.terms))
            if _valid(nums, ops):
                seen.setdefault((nums, ops), None)
        return list(seen)

    @staticmethod
    def _item(problem: Problem, rng: random.Random) -> TaskItem:
        nums, ops = problem
        expr = expression(nums, ops)
        prompt = rng.choice(TEMPLATES).format(expr=expr)
        return TaskItem(key=expr.replace(" ", ""), prompt=prompt, answer=str(answer_of(nums, ops)))

    def split(self, name: SplitName) -> list[TaskItem]:
        return list(self._splits[name])

    def extract(self, text: str) -> str | None:
        """The last number after any reasoning block (``None`` if the block never closes)."""
        rest = final_part(text)
        return None if rest is None else last_number(rest)

    def score(self, prediction: str | None, item: TaskItem) -> float:
        if prediction is None:
            return 0.0
        try:
            return float(float(prediction) == int(item.answer))
        except ValueError:
            return 0.0


@TASKS.register("arithmetic", params=ArithmeticParams)
def make_arithmetic(seed: int, sizes: dict[str, int], **params: object) -> Arithmetic:
    """Multi-step arithmetic with worked reasoning on request; params: digits, ops, terms."""
    known = set(ArithmeticParams.model_fields)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown arithmetic parameter {unknown[0]!r} "
                         f"(known: {', '.join(sorted(known))})")
    return Arithmetic(seed, sizes, **params)  # type: ignore[arg-type]
