"""What reproduces a number: code identity (git sha) and package versions."""

from __future__ import annotations

import platform
import subprocess
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from extractbench.logs.records import Provenance

PACKAGES = ("extractbench", "torch", "numpy", "openai", "anthropic", "fastapi", "uvicorn",
            "pydantic", "pandas", "matplotlib", "tiktoken", "safetensors")


@cache
def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


@cache
def git_state() -> tuple[str, bool]:
    """(sha, dirty) of the checkout holding this package, or ('unknown', False)."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=root, capture_output=True, text=True, timeout=5,
                                    check=True).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return sha or "unknown", dirty


def provenance(scenario_name: str, scenario_path: str, scenario_hash: str) -> Provenance:
    import torch  # a run trains students: torch is loaded by then

    sha, dirty = git_state()
    return Provenance(
        scenario_name=scenario_name,
        scenario_path=scenario_path,
        scenario_hash=scenario_hash,
        git_sha=sha,
        git_dirty=dirty,
        extractbench_version=package_versions()["extractbench"],
        package_versions=package_versions(),
        python=sys.version.split()[0],
        platform=platform.platform(),
        torch_threads=torch.get_num_threads(),
    )
