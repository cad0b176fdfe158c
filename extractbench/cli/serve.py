"""``extractbench serve``: the reference endpoint in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from extractbench.cli.common import EXIT_BAD_INPUT, EXIT_OK, err, serve_until_interrupted


def cmd(args: argparse.Namespace) -> int:
    from extractbench.cli.profile import ServeError

    try:
        serve_reference(host=args.host, port=args.port, profile=args.profile,
                        models=args.model, keys=args.key, audit_log=args.audit_log)
    except ServeError as exc:
        err(str(exc))
        return EXIT_BAD_INPUT
    return EXIT_OK


def serve_reference(host: str, port: int, profile: str | None, models: list[str] | None,
                    keys: list[str] | None, audit_log: str | None) -> None:
    from extractbench.cli.profile import ServeError, check_bind, load_profile, parse_keys
    from extractbench.defenses import DEFENSES, AuditLog, DefenseStack
    from extractbench.reference.teachers import available, load_reference
    from extractbench.registry import UnknownNameError
    from extractbench.serving import RunningServer, ServedModel, create_app

    check_bind(host, keys)
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
    try:
        server = RunningServer(app, host=host, port=port).start()
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise ServeError(f"--host/--port: cannot serve on {host}:{port} ({exc}; is the port "
                         "in use?)") from None
    print(f"extractbench reference endpoint: {server.base_url}")
    print(f"  OpenAI SDK:    base_url={server.openai_base_url}")
    print(f"  Anthropic SDK: base_url={server.anthropic_base_url}")
    print(f"  models: {', '.join(served)}")
    serve_until_interrupted(server, sorted(set(key_map.values())), default_key=not keys)


def register(sub: Any) -> None:
    s = sub.add_parser("serve", help="run the reference endpoint in the foreground",
                       description="Serve the reference teacher models over the OpenAI and "
                       "Anthropic HTTP APIs (/v1/models, /v1/chat/completions, /v1/completions, "
                       "/v1/messages). Prints the base URL and the accepted keys' ids.")
    s.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    s.add_argument("--profile", help="YAML file with a `defenses:` list (default: undefended)")
    s.add_argument("--model", action="append", help="reference model to serve (repeatable; "
                   "default: all shipped)")
    s.add_argument("--key", action="append",
                   help="accepted API key as ID=KEY (repeatable; default: one key "
                   "'local'=sk-local printed at start)")
    s.add_argument("--audit-log", help="write defense audit events to this JSONL file")
    s.set_defaults(func=cmd)

