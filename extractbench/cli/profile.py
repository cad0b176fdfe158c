"""What ``serve`` and ``proxy`` read from their arguments: a defense profile file (an ordered
``defenses:`` list) and ``ID=KEY`` client keys."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from extractbench.config.scenario import DefenseSpec
from extractbench.errors import ExtractbenchError

__all__ = ["ProfileFile", "ServeError", "check_bind", "load_profile", "parse_keys"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ServeError(ExtractbenchError):
    """A bad ``serve`` argument; the message is one line."""


class ProfileFile(BaseModel):
    """A defense profile file: an ordered ``defenses:`` stack."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    defenses: list[DefenseSpec] = Field(default_factory=list)


def load_profile(path: str) -> ProfileFile:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ServeError(f"{path}: cannot read profile: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ServeError(f"{path}: malformed YAML: {str(exc).splitlines()[0]}") from None
    try:
        return ProfileFile.model_validate(data)
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(p) for p in e["loc"])
        msg = f"{path}: {loc}: {e['msg']} (a profile has one field, `defenses`)"
        raise ServeError(msg) from None


def parse_keys(specs: list[str] | None) -> dict[str, str]:
    """``ID=KEY`` arguments -> {key: id}."""
    if not specs:
        return {"sk-local": "local"}
    out: dict[str, str] = {}
    for spec in specs:
        kid, sep, secret = spec.partition("=")
        if not sep or not kid or not secret:
            raise ServeError("--key: expected ID=KEY, e.g. --key attacker-0=sk-test-0")
        out[secret] = kid
    return out


def check_bind(host: str, keys: list[str] | None) -> None:
    """Serving beyond this machine with the documented default key would let anyone in: a
    non-loopback ``--host`` needs explicit ``--key`` values."""
    if not keys and host not in LOOPBACK and not host.startswith("127."):
        raise ServeError(f"--host {host}: serving beyond this machine needs explicit keys "
                         "(--key ID=KEY); the default key sk-local is public")
