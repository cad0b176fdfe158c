"""What a run writes never shows in ``git status``; the published snapshot stays in git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                                reason="not a git checkout")


def _ignored(path: str) -> bool:
    out = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT,
                         timeout=30)
    return out.returncode == 0


@pytest.mark.parametrize("path", ["results/leaderboard.md", "results/leaderboard.html",
                                  "results/cells.csv", "results/transfer_vs_budget-cipher.png",
                                  "results/runs/x/records.jsonl", "results/bench.json"])
def test_what_a_run_writes_is_ignored(path: str) -> None:
    assert _ignored(path)


@pytest.mark.parametrize("path", ["results/published/leaderboard.md",
                                  "results/published/README.md", "scenarios/ci.yaml"])
def test_the_snapshot_and_the_sources_are_not_ignored(path: str) -> None:
    assert not _ignored(path)
