"""The package's boundaries, checked on the source: which subpackage may import which at module
level (imports inside functions and under ``TYPE_CHECKING`` load nothing when a module is
imported, so they are allowed), and where torch may be imported at all at module level."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A subpackage never imports, at module level, the ones downstream of it in the data flow:
# scenario (config) -> endpoints -> campaign -> measure -> logs/records -> report.
FORBIDDEN: dict[str, set[str]] = {
    "types": {"config", "endpoints", "campaign", "measure", "logs", "report", "serving",
              "reference", "cli", "attacks", "defenses", "students", "tasks"},
    "errors": {"config", "endpoints", "campaign", "measure", "logs", "report", "serving",
               "reference", "cli"},
    "secret": {"types", "errors", "config", "endpoints", "campaign", "measure", "logs",
               "report", "serving", "reference", "cli", "attacks", "defenses", "students",
               "tasks"},
    "config": {"endpoints", "campaign", "measure", "report", "serving", "reference", "cli"},
    "endpoints": {"campaign", "measure", "report", "serving", "reference", "cli"},
    "campaign": {"measure", "report", "serving", "reference", "cli"},
    "logs": {"endpoints", "campaign", "measure", "report", "serving", "reference", "cli"},
    "report": {"endpoints", "campaign", "measure", "serving", "reference", "cli", "attacks",
               "students", "defenses"},
    "serving": {"campaign", "measure", "report", "cli", "attacks", "students"},
    "reference": {"endpoints", "campaign", "measure", "logs", "report", "serving", "cli"},
    "measure": {"report", "cli"},
}
# torch at module level: only where models run, and the test harness
TORCH_OK = {"reference", "testing"}


def _package_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "attacks":
        return "attacks"
    return rel.parts[1].removesuffix(".py")


def _module_level_imports(tree: ast.Module) -> list[str]:
    """Imported module names outside functions and outside ``if TYPE_CHECKING:``."""
    out: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                out.extend(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.append(node.module)
            elif isinstance(node, ast.If):
                test = node.test
                if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                    visit(node.orelse)
                else:
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for h in node.handlers:
                    visit(h.body)
            elif isinstance(node, ast.ClassDef):
                visit(node.body)

    visit(tree.body)
    return out


def _graph() -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    edges: dict[str, set[str]] = defaultdict(set)
    torch_users: dict[str, list[str]] = defaultdict(list)
    files = [*(ROOT / "extractbench").rglob("*.py"), *(ROOT / "attacks").rglob("*.py")]
    files = [f for f in files if "weights" not in f.parts]
    for f in files:
        pkg = _package_of(f)
        for mod in _module_level_imports(ast.parse(f.read_text(encoding="utf-8"))):
            if mod == "torch" or mod.startswith("torch."):
                torch_users[pkg].append(str(f.relative_to(ROOT)))
            elif mod.startswith("extractbench."):
                dst = mod.split(".")[1]
                if dst != pkg:
                    edges[pkg].add(dst)
    return edges, torch_users


def test_no_subpackage_imports_one_downstream_of_it() -> None:
    edges, _ = _graph()
    bad = {f"{src} -> {dst}" for src, dsts in edges.items()
           for dst in dsts & FORBIDDEN.get(src, set())}
    assert not bad, sorted(bad)


def test_subpackages_import_each_other_without_cycles() -> None:
    edges, _ = _graph()
    edges = {k: v - {"__init__"} for k, v in edges.items() if k not in {"__init__", "__main__"}}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def dfs(node: str, path: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend([*path, node, nxt])
                return True
            if nxt not in state and dfs(nxt, [*path, node]):
                return True
        state[node] = 2
        return False

    for node in sorted(edges):
        if node not in state and dfs(node, []):
            break
    assert not cycle, " -> ".join(cycle)


def test_torch_is_imported_at_module_level_only_where_models_run() -> None:
    _, torch_users = _graph()
    bad = {pkg: files for pkg, files in torch_users.items() if pkg not in TORCH_OK}
    assert not bad, bad


def test_the_checker_sees_a_module_level_import_and_skips_a_lazy_one() -> None:
    tree = ast.parse("import torch\nfrom typing import TYPE_CHECKING\n"
                     "if TYPE_CHECKING:\n    import pandas\n"
                     "def f():\n    import numpy\n")
    assert _module_level_imports(tree) == ["torch", "typing"]
