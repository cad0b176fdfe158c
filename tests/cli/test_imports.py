"""torch is imported only where models run: the light commands and the public package do not
load it (nor pandas/matplotlib where no table or plot is made)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _modules_after(code: str) -> set[str]:
    code += "\nimport sys\nprint('@@MODULES@@', *sys.modules)"  # after what the command printed
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    return set(out.stdout.rsplit("@@MODULES@@", 1)[1].split())


def _cli(*args: str) -> str:
    return ("import sys\nfrom extractbench.cli.main import main\n"
            f"sys.argv = ['extractbench', {', '.join(repr(a) for a in args)}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n")


@pytest.mark.parametrize("args", [("--help",), ("validate", "scenarios/ci.yaml"), ("schema",),
                                  ("list", "attacks"), ("list", "defenses"),
                                  ("list", "students"), ("list", "tasks")],
                         ids=lambda a: " ".join(a))
def test_light_commands_do_not_import_torch(args: tuple[str, ...]) -> None:
    mods = _modules_after(_cli(*args))
    assert "extractbench.cli.main" in mods
    assert "torch" not in mods


def test_leaderboard_does_not_import_torch(tmp_path: Path) -> None:
    mods = _modules_after(_cli("leaderboard", str(tmp_path / "no-such-run")))
    assert "torch" not in mods


def test_the_public_package_is_light() -> None:
    mods = _modules_after("import extractbench\nextractbench.load_scenario\n"
                          "extractbench.ExtractbenchError")
    assert not {"torch", "pandas", "matplotlib"} & mods
