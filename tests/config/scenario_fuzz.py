"""Generated scenario files for fuzzing ``load_scenario``: the shipped scenarios, mutated.

Shared by ``tests/config/test_scenario_fuzz.py`` and ``scripts/fuzz_validate.py`` (each loads
this file by path; ``tests/`` is not a package). A file is one of ``scenarios/*.yaml`` with
one to three mutations: a key dropped, renamed (often to an odd or unicode name) or added; a
value retyped to a random scalar or structure; two places sharing one object (an alias); a line
repeated (a duplicate key); random bytes; a cut; deep nesting; an alias bomb; a huge integer.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from extractbench.config.gates import cell_coordinates
from extractbench.config.plan import grid
from extractbench.config.scenario import Scenario, ScenarioError, load_scenario, scenario_hash

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {p.name: p.read_text(encoding="utf-8")
             for p in sorted((ROOT / "scenarios").glob("*.yaml"))}
PARSED = {name: yaml.safe_load(text) for name, text in SCENARIOS.items()}

ODD_NAMES = ["", ".", "..", "../x", "a/b", "a\\b", "/abs", "a..b", "a__b", "_a", "a_", "a.",
             "x" * 41, "x" * 40, "CON", "ré", "a b", "a\nb", "a\tb", "\u202ereversed",
             "a\u2066b", "\x00", "q30", "reference", "1", "true", "null", "~", "-a", "A" * 64]

_SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 2**31, 2**63, 10**9 + 1, 10**12 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(ODD_NAMES),
    st.dates(),
    st.binary(max_size=6),
)
_KEYS = st.one_of(st.text(max_size=10), st.sampled_from(ODD_NAMES), st.integers(-3, 3),
                  st.booleans(), st.none())
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=8,
)

_DEEP = "DEEPNESTINGPLACEHOLDER"
_BIGINT = "BIGINTPLACEHOLDER"
_BOMB = "ALIASBOMBPLACEHOLDER"


@dataclass
class Case:
    """One generated file: its bytes and the mutations that made it."""

    data: bytes
    mutations: list[str]


def _paths(node: Any, prefix: tuple[Any, ...] = (),
           above: frozenset[int] = frozenset()) -> list[tuple[Any, ...]]:
    """Every path into a parsed scenario (dict keys and list indices), not into a cycle."""
    out = [prefix]
    if id(node) in above:
        return out
    inner = above | {id(node)}
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k), inner)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i), inner)
    return out


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    node = root
    for p in path[:-1]:
        node = node[p]
    return node


def _mutate_data(draw: Any, data: dict[str, Any], kind: str) -> None:
    paths = [p for p in _paths(data) if p]
    in_params = [p for p in paths if "params" in p[:-1]]  # values a plugin reads as it likes
    if kind in ("bomb", "deep", "bigint", "retype") and in_params and draw(st.booleans()):
        path = draw(st.sampled_from(in_params))
    else:
        path = draw(st.sampled_from(paths))
    parent, last = _parent(data, path), path[-1]
    if kind == "drop":
        del parent[last]
    elif kind == "retype":
        parent[last] = draw(_VALUES)
    elif kind == "deep":
        parent[last] = _DEEP
    elif kind == "bigint":
        parent[last] = _BIGINT
    elif kind == "bomb":
        parent[last] = _BOMB
    elif kind == "rename" and isinstance(parent, dict):
        new = draw(_KEYS)
        parent[new] = parent.pop(last)
    elif kind == "add":
        target = draw(st.sampled_from([p for p in [(), *paths]
                                       if isinstance(_get(data, p), dict)]))
        _get(data, target)[draw(_KEYS)] = draw(_VALUES)
    elif kind == "share":  # one object in two places: the dumper writes an anchor and alias
        source = _get(data, draw(st.sampled_from(paths)))
        parent[last] = source


def _get(root: Any, path: tuple[Any, ...]) -> Any:
    node = root
    for p in path:
        node = node[p]
    return node


def _bomb(levels: int, width: int) -> str:
    """A flow list defining ``levels`` anchors, each ``width`` copies of the one before
    (``width ** levels`` nodes once expanded; "billion laughs" at 9 x 9)."""
    parts = ["&l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        parts.append(f"&l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "[" + ", ".join(parts) + "]"


DATA_KINDS = ["drop", "retype", "rename", "add", "share", "deep", "bigint", "bomb"]
TEXT_KINDS = ["dup-line", "bytes", "cut", "nothing"]


@st.composite
def scenario_files(draw: Any) -> Case:
    """A shipped scenario with zero to three mutations, as bytes."""
    base = draw(st.sampled_from(sorted(SCENARIOS)))
    kinds = draw(st.lists(st.sampled_from(DATA_KINDS + TEXT_KINDS), max_size=3))
    data_kinds = [k for k in kinds if k in DATA_KINDS]
    if data_kinds:
        data = copy.deepcopy(PARSED[base])
        for kind in data_kinds:
            _mutate_data(draw, data, kind)
        try:
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=draw(st.booleans()),
                                  default_flow_style=draw(st.sampled_from([False, None])))
        except (yaml.YAMLError, ValueError, RecursionError):
            text = SCENARIOS[base]  # the generator's limit, not the loader's
    else:
        text = SCENARIOS[base]
    if _DEEP in text:
        depth = draw(st.integers(1, 1500))
        opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}")]))
        text = text.replace(_DEEP, opener * depth + "1" + closer * depth, 1)
    if _BIGINT in text:
        text = text.replace(_BIGINT, "9" * draw(st.integers(1, 6000)), 1)
    if _BOMB in text:
        text = text.replace(_BOMB, _bomb(draw(st.integers(2, 12)), draw(st.integers(2, 10))), 1)
    for kind in (k for k in kinds if k in TEXT_KINDS):
        lines = text.splitlines(keepends=True)
        if kind == "dup-line" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(draw(st.integers(i, len(lines))), lines[i])
            text = "".join(lines)
    raw = text.encode("utf-8")
    for kind in kinds:
        if kind == "bytes":
            at = draw(st.integers(0, len(raw)))
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
        elif kind == "cut":
            raw = raw[:draw(st.integers(0, len(raw)))]
    return Case(raw, kinds or ["none"])


def run_problems(sc: Scenario) -> list[str]:
    """What would stop ``extractbench run`` on an accepted scenario, found cheaply: the grid
    expands to cells whose files have usable names, the hash (the resume key) computes, and
    every gate selects a cell (``beats`` gates: one with its partner)."""
    out = []
    cells = grid(sc)
    if not cells:
        out.append("no cells")
    for cell in cells:
        name = f"{cell.slug}.jsonl"
        if "/" in cell.slug or len(name.encode()) > 255 or cell.slug.startswith("."):
            out.append(f"unusable file name {name!r}")
    scenario_hash(sc)
    if not is_finite_tree(sc.model_dump()):
        out.append("a non-finite number was accepted")
    coords = [cell_coordinates(c) for c in cells]
    for n, gate in enumerate(sc.gates):
        at = [c for c in coords if all(str(c[k]) == str(v) for k, v in gate.where.items())]
        if gate.beats is not None:
            floors = {tuple(v for k, v in c.items() if k != "student")
                      for c in coords if c["student"] == gate.beats}
            at = [c for c in at if c["student"] != gate.beats
                  and tuple(v for k, v in c.items() if k != "student") in floors]
        if not at:
            out.append(f"gate {n} selects no cell")
    return out


@dataclass
class Outcome:
    accepted: bool
    lines: list[str]
    problems: list[str]
    """Broken promises: a line not naming the file, an internal error, a run problem."""


def check(path: Path) -> Outcome:
    """Load ``path``; an exception other than :class:`ScenarioError` propagates."""
    try:
        sc = load_scenario(path)
    except ScenarioError as exc:
        bad = [line for line in exc.lines
               if not line.startswith(f"{path}: ") or "\n" in line or "\r" in line
               or "internal error" in line]
        if not exc.lines:
            bad.append("no lines")
        return Outcome(False, exc.lines, bad)
    return Outcome(True, [], run_problems(sc))


def is_finite_tree(value: Any) -> bool:
    """Every float in ``value`` is finite (used to spot-check accepted scenarios)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(is_finite_tree(v) for v in value.values())
    if isinstance(value, list):
        return all(is_finite_tree(v) for v in value)
    return True
