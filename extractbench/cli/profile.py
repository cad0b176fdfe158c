"""What ``serve`` and ``proxy`` read from their arguments: a defense profile file (an ordered
``defenses:`` list), ``ID=KEY`` client keys (from ``--key``, a ``--key-file`` or an
environment variable, so they need not show in ``ps``) and the server limits."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from extractbench.config.scenario import DefenseSpec
from extractbench.errors import ExtractbenchError
from extractbench.secret import Secret

if TYPE_CHECKING:
    from extractbench.serving.limits import ServerLimits

__all__ = ["DEFAULT_KEY", "PROXY_KEYS_ENV", "SERVE_KEYS_ENV", "ProfileFile", "ServeError",
           "check_bind", "limits_of", "load_keys", "load_profile", "parse_keys",
           "read_key_file"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_KEY = {"sk-local": "local"}
"""The public key every command accepts when given none (loopback only)."""
SERVE_KEYS_ENV = "EXTRACTBENCH_SERVE_KEYS"
PROXY_KEYS_ENV = "EXTRACTBENCH_PROXY_KEYS"
"""Environment variables holding client keys, ``ID=KEY`` entries separated by commas,
spaces or newlines."""


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
    """``ID=KEY`` arguments -> {key: id}; none: :data:`DEFAULT_KEY`."""
    if not specs:
        return {Secret(k): v for k, v in DEFAULT_KEY.items()}
    out: dict[str, str] = {}
    for spec in specs:
        _add_key(out, spec, "--key", "expected ID=KEY, e.g. --key attacker-0=sk-test-0")
    return out


def _add_key(out: dict[str, str], spec: str, where: str, hint: str) -> None:
    """Add one ``ID=KEY`` to ``out``; the key itself never appears in an error."""
    kid, sep, secret = spec.strip().partition("=")
    kid, secret = kid.strip(), secret.strip()
    if not sep or not kid or not secret:
        raise ServeError(f"{where}: {hint}")
    if out.get(secret, kid) != kid:
        raise ServeError(f"{where}: one key is given for two ids, {out[secret]} and {kid} "
                         "(give each id its own key)")
    out[Secret(secret)] = kid


def read_key_file(path: str) -> dict[str, str]:
    """A key file: one ``ID=KEY`` per line; blank lines and lines starting with ``#`` are
    skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ServeError(f"{path}: cannot read key file: {exc.strerror} (--key-file takes a "
                         "file of ID=KEY lines)") from None
    except UnicodeDecodeError:
        raise ServeError(f"{path}: not a text file (--key-file takes a file of ID=KEY "
                         "lines)") from None
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            _add_key(out, line, f"{path}: line {n}",
                     "expected ID=KEY (one per line, e.g. attacker-0=sk-test-0; # comments)")
    if not out:
        raise ServeError(f"{path}: no keys in the key file (write one ID=KEY per line)")
    return out


def _env_keys(name: str, environ: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, spec in enumerate(re.split(r"[\s,]+", environ.get(name, "").strip())):
        if spec:
            _add_key(out, spec, f"{name}: entry {i + 1}",
                     f"expected ID=KEY entries separated by commas or spaces, e.g. "
                     f"{name}=attacker-0=sk-test-0,attacker-1=sk-test-1")
    return out


def load_keys(cli: list[str] | None, key_file: str | None, env: str,
              environ: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The client keys from every source given ({key: id}): ``--key`` values, a
    ``--key-file`` and the environment variable ``env``; ``None`` when there are none (the
    command then uses :data:`DEFAULT_KEY`)."""
    out: dict[str, str] = {}
    sources = [parse_keys(cli) if cli else {},
               read_key_file(key_file) if key_file else {},
               _env_keys(env, os.environ if environ is None else environ)]
    for source in sources:
        for secret, kid in source.items():
            if out.get(secret, kid) != kid:
                raise ServeError(f"--key, --key-file, {env}: one key is given for two ids, "
                                 f"{out[secret]} and {kid} (give each id its own key)")
            out[Secret(secret)] = kid
    return out or None


def check_bind(host: str, keys: Collection[str] | None, env: str = SERVE_KEYS_ENV) -> None:
    """Serving beyond this machine with the documented default key would let anyone in: a
    non-loopback ``--host`` needs explicit keys (``keys``: the ones given, ``None``: none;
    ``env``: the command's keys variable, named in the error)."""
    if not keys and host not in LOOPBACK and not host.startswith("127."):
        raise ServeError(f"--host {host}: serving beyond this machine needs explicit keys "
                         f"(--key ID=KEY), a --key-file or {env}; the default key sk-local "
                         "is public")


def limits_of(args: argparse.Namespace) -> ServerLimits:
    """The :class:`ServerLimits` from the options
    :func:`~extractbench.cli.common.add_limit_options` registered (one not given keeps its
    default)."""
    from extractbench.cli.common import LIMIT_OPTIONS
    from extractbench.serving.limits import ServerLimits

    given = {field: getattr(args, dest, None) for dest, field in LIMIT_OPTIONS.items()}
    return ServerLimits(**{k: v for k, v in given.items() if v is not None})
