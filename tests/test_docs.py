"""Every dotted name ``extractbench.…`` the README and docs/ mention resolves to a module or
an attribute of one, so a moved module cannot leave the docs pointing at nothing."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NAME = re.compile(r"\bextractbench(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def _names() -> list[tuple[str, str]]:
    out = set()
    for doc in DOCS:
        for m in NAME.finditer(doc.read_text(encoding="utf-8")):
            out.add((doc.name, m.group(0).rstrip(".")))
    return sorted(out)


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


@pytest.mark.parametrize(("doc", "dotted"), _names(), ids=lambda v: str(v))
def test_a_name_the_docs_mention_exists(doc: str, dotted: str) -> None:
    assert _resolves(dotted), f"{doc} mentions {dotted}, which does not exist"


def test_the_check_fails_for_a_name_that_is_gone() -> None:
    assert not _resolves("extractbench.results.load_records")
    assert _resolves("extractbench.read_records")


PATH = re.compile(r"`((?:[\w.-]+/)+[\w.-]+\.(?:py|yaml|md|json))(?:::\w+)?`")


EXAMPLES = {"attacks/my_attack.py"}  # the file a how-to tells the reader to write


def _paths() -> list[tuple[str, str]]:
    return sorted({(doc.name, m.group(1)) for doc in DOCS
                   for m in PATH.finditer(doc.read_text(encoding="utf-8"))})


@pytest.mark.parametrize(("doc", "path"), _paths(), ids=lambda v: str(v))
def test_a_file_the_docs_name_exists(doc: str, path: str) -> None:
    if (path.startswith("results/") and not path.startswith("results/published/")) \
            or path in EXAMPLES:
        pytest.skip("written by a run, or an example name")
    assert (ROOT / path).exists() or (ROOT / "docs" / path).exists(), f"{doc}: {path}"
