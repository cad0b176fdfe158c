"""``extractbench serve``: the reference endpoint in the foreground."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from extractbench.config.scenario import DefenseSpec
from extractbench.errors import ExtractbenchError


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


def serve_reference(host: str, port: int, profile: str | None, models: list[str] | None,
                    keys: list[str] | None, audit_log: str | None) -> None:
    from extractbench.defenses import DEFENSES, AuditLog, DefenseStack
    from extractbench.reference.teachers import available, load_reference
    from extractbench.registry import UnknownNameError
    from extractbench.serving import RunningServer, ServedModel, create_app

    names = models or available()
    if not names:
        raise ServeError("no reference weights found (run `extractbench train-reference`)")
    served = {}
    for name in names:
        try:
            served[name] = ServedModel(name, load_reference(name))
        except (KeyError, FileNotFoundError) as exc:
            raise ServeError(str(exc.args[0])) from None
    stack = None
    if profile:
        prof = load_profile(profile)
        audit = AuditLog(Path(audit_log) if audit_log else None)
        stages = []
        for i, d in enumerate(prof.defenses):
            try:
                stages.append(DEFENSES.get(d.name)(**d.params))
            except UnknownNameError as exc:
                raise ServeError(f"{profile}: defenses.{i}.name: {exc}") from None
            except (TypeError, ValueError) as exc:
                raise ServeError(f"{profile}: defenses.{i}.params: {exc}") from None
        stack = DefenseStack(stages, audit)
    key_map = parse_keys(keys)
    app = create_app(served, key_map, stack)
    server = RunningServer(app, host=host, port=port).start()
    print(f"extractbench reference endpoint: {server.base_url}")
    print(f"  OpenAI SDK:    base_url={server.openai_base_url}")
    print(f"  Anthropic SDK: base_url={server.anthropic_base_url}")
    print(f"  models: {', '.join(served)}")
    print(f"  key ids: {', '.join(sorted(set(key_map.values())))}"
          + ("  (default key: sk-local)" if not keys else ""), flush=True)
    try:
        import threading

        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
