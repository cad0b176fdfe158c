"""Multi-step arithmetic posed in natural language ("What is 47 + 38 - 12? Answer with the
number only.").

**Content.** A problem's content key is its canonical form (:func:`canonical`): the factors of
each product sorted, and the added terms of each run of additions that no subtraction
interrupts sorted (the terms before the first ``-``, and the terms added after each
subtracted one). So ``47 + 38`` and ``38 + 47`` are one content (``38+47``), as are
``3 * 12 + 5`` and ``5 + 12 * 3`` (``5+3*12``) and ``50 - 7 + 2 + 9`` and ``50 - 7 + 9 + 2``
(``50-7+2+9``); nothing moves across a ``-`` (``50 - 7 + 2`` and ``50 + 2 - 7`` stay two), so
every problem of a class has the same answer and no negative intermediate result. The key
reads as the canonical expression without spaces (``eval`` gives the answer). Problems of one
content are its variants: they share a split, held-out and benign take one of them, the attack
pool all of them. :meth:`Arithmetic.content_keys` finds the expression in any wording (every
template, the reasoning suffix, paraphrases; the multiplication sign, a spaced ``x``, "plus",
"minus" and "times" read as operators).

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
import re
from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from extractbench.registry import PluginParams
from extractbench.tasks.answers import REASONING_CLOSE, REASONING_OPEN, final_part, last_number
from extractbench.tasks.base import TASKS, SplitName, TaskItem
from extractbench.tasks.splits import assign, assign_drawn, pick

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


def canonical(nums: tuple[int, ...], ops: tuple[str, ...]) -> str:
    """The content key of a problem: factors of each product sorted, and the added terms of
    each run of additions that no subtraction interrupts sorted (see the module docstring);
    the expression without spaces."""
    terms: list[tuple[str, tuple[int, ...]]] = []
    sign, factors = "+", [nums[0]]
    for op, n in zip(ops, nums[1:], strict=True):
        if op == "*":
            factors.append(n)
        else:
            terms.append((sign, tuple(sorted(factors))))
            sign, factors = op, [n]
    terms.append((sign, tuple(sorted(factors))))
    out: list[str] = []
    run: list[tuple[int, ...]] = []
    for sign, term in [*terms, ("-", ())]:  # a sentinel subtraction flushes the last run
        if sign == "+":
            run.append(term)
            continue
        out.extend("+" + "*".join(map(str, t)) for t in sorted(run))
        run = []
        if term:
            out.append("-" + "*".join(map(str, term)))
    return "".join(out)[1:]


_WORD_OPS = ((re.compile(r"\s+plus\s+", re.IGNORECASE), " + "),
             (re.compile(r"\s+minus\s+", re.IGNORECASE), " - "),
             (re.compile(r"\s+(?:times|multiplied by)\s+", re.IGNORECASE), " * "),
             (re.compile(r"\s+x\s+"), " * "))
_OP_CHARS = {"+": "+", "-": "-", "−": "-", "–": "-", "*": "*", "×": "*", "·": "*"}
_EXPR = re.compile(r"\d+(?:\s*[-+*×·−–]\s*\d+)+")
_PART = re.compile(r"\d+|[-+*×·−–]")


def parse(expr: str) -> Problem:
    """Operands and operators of an expression such as ``47 + 38 * 2``."""
    parts = _PART.findall(expr)
    return (tuple(int(p) for p in parts[::2]), tuple(_OP_CHARS[p] for p in parts[1::2]))


def problem_keys(prompt: str) -> tuple[str, ...]:
    """The content keys of the arithmetic problems written in ``prompt``, in order."""
    text = prompt
    for pattern, op in _WORD_OPS:
        text = pattern.sub(op, text)
    keys = (canonical(*parse(m.group(0))) for m in _EXPR.finditer(text))
    return tuple(dict.fromkeys(keys))


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
        what = f"digits={digits}, ops={list(self.ops)}, terms={terms}"
        self._seed = seed
        space = len(self.ops) ** (terms - 1) * (hi - lo) ** terms
        if space <= _ENUMERATE_MAX:
            variants: dict[str, list[Problem]] = {}
            for problem in self._enumerate(lo, hi):
                variants.setdefault(canonical(*problem), []).append(problem)
            chunks = assign(self.name, seed, variants, sizes, what)
        else:
            chunks = assign_drawn(self.name, seed, self._draw(lo, hi, seed, sizes), sizes, what,
                                  space)
        self._splits = {s: [self._item(p) for _, p in c] for s, c in chunks.items()}

    def _enumerate(self, lo: int, hi: int) -> Iterator[Problem]:
        for ops in itertools.product(self.ops, repeat=self.terms - 1):
            for nums in itertools.product(range(lo, hi), repeat=self.terms):
                if _valid(nums, ops):
                    yield nums, ops

    def _draw(self, lo: int, hi: int, seed: int,
              sizes: dict[str, int]) -> Iterator[tuple[str, Problem]]:
        """Random valid problems from a stream fixed by the seed (the sizes only cap how far
        it is read)."""
        rng = random.Random(f"{self.name}/{seed}")
        want = sum(max(0, int(v)) for v in sizes.values())
        for _ in range(40 * want + 1000):
            ops = tuple(rng.choice(self.ops) for _ in range(self.terms - 1))
            nums = tuple(rng.randrange(lo, hi) for _ in range(self.terms))
            if _valid(nums, ops):
                yield canonical(nums, ops), (nums, ops)

    def _item(self, problem: Problem) -> TaskItem:
        nums, ops = problem
        expr = expression(nums, ops)
        template = TEMPLATES[pick(self.name, self._seed, expr, len(TEMPLATES), "template")]
        return TaskItem(key=canonical(nums, ops), prompt=template.format(expr=expr),
                        answer=str(answer_of(nums, ops)))

    def content_keys(self, prompt: str) -> tuple[str, ...]:
        """The canonical problems ``prompt`` asks about, in any wording (see the module
        docstring); empty when it writes none."""
        return problem_keys(prompt)

    def content_key(self, prompt: str) -> str | None:
        keys = problem_keys(prompt)
        return keys[0] if keys else None

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
