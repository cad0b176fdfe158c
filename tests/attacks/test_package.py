"""``attacks/`` is the package ``extractbench.attacks`` and nothing else: a user's own
``attacks/`` folder never shadows it, and nothing named ``attacks`` is installed."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_works_from_a_folder_with_its_own_attacks_package(tmp_path: Path) -> None:
    (tmp_path / "attacks").mkdir()
    (tmp_path / "attacks" / "__init__.py").write_text("raise RuntimeError('the user's own')\n")
    out = subprocess.run([sys.executable, "-m", "extractbench", "list", "attacks"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "random-pool" in out.stdout


def test_the_folder_refuses_to_be_imported_as_attacks() -> None:
    out = subprocess.run([sys.executable, "-c", "import attacks"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "import it as that, not as 'attacks'" in out.stderr


def test_every_package_is_installed_under_extractbench_and_none_is_left_out() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    assert all(p == "extractbench" or p.startswith("extractbench.") for p in listed), listed
    on_disk = {".".join(p.parent.relative_to(ROOT).parts)
               for p in (ROOT / "extractbench").rglob("__init__.py")}
    on_disk.add("extractbench.attacks")  # a link to attacks/, which rglob does not follow
    assert on_disk == listed, (on_disk - listed, listed - on_disk)
    assert (ROOT / "extractbench" / "attacks").resolve() == (ROOT / "attacks").resolve()
