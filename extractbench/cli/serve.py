"""``extractbench serve``: the reference endpoint in the foreground.

Client keys come from ``--key ID=KEY``, a ``--key-file`` (one ``ID=KEY`` per line) and the
``EXTRACTBENCH_SERVE_KEYS`` variable, together; the last two keep keys out of ``ps``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extractbench.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    add_limit_options,
    err,
    positive,
    serve_until_interrupted,
)

if TYPE_CHECKING:
    from extractbench.serving.limits import ServerLimits


def cmd(args: argparse.Namespace) -> int:
    from extractbench.cli.profile import SERVE_KEYS_ENV, ServeError, limits_of, load_keys

    try:
        keys = load_keys(args.key, args.key_file, SERVE_KEYS_ENV)
        serve_reference(host=args.host, port=args.port, profile=args.profile,
                        models=args.model, keys=keys, audit_log=args.audit_log,
                        limits=limits_of(args), strict_context=args.strict_context,
                        max_prompt_tokens=args.max_prompt_tokens)
    except ServeError as exc:
        err(str(exc))
        return EXIT_BAD_INPUT
    return EXIT_OK


def serve_reference(host: str, port: int, profile: str | None, models: list[str] | None,
                    keys: dict[str, str] | list[str] | None, audit_log: str | None,
                    limits: ServerLimits | None = None, strict_context: bool = False,
                    max_prompt_tokens: int | None = None) -> None:
    """Serve until interrupted. ``keys``: {key: id} (or ``ID=KEY`` strings); ``None``: the
    public default key, loopback only."""
    from extractbench.cli.profile import (
        DEFAULT_KEY,
        ServeError,
        check_bind,
        load_profile,
        parse_keys,
    )
    from extractbench.defenses import DEFENSES, AuditLog, DefenseStack
    from extractbench.reference.served import DEFAULT_MAX_PROMPT_TOKENS
    from extractbench.reference.teachers import available, load_reference
    from extractbench.registry import UnknownNameError
    from extractbench.serving import RunningServer, ServedModel, create_app

    key_map = parse_keys(keys) if isinstance(keys, list) else keys
    check_bind(host, key_map)
    names = models or available()
    if not names:
        raise ServeError("no reference weights found (run `extractbench train-reference`)")
    served = {}
    for name in names:
        try:
            served[name] = ServedModel(
                name, load_reference(name), strict_context=strict_context,
                max_prompt_tokens=max_prompt_tokens or DEFAULT_MAX_PROMPT_TOKENS)
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
    app = create_app(served, key_map or dict(DEFAULT_KEY), stack)
    try:
        server = RunningServer(app, host=host, port=port, limits=limits).start()
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise ServeError(f"--host/--port: cannot serve on {host}:{port} ({exc}; is the port "
                         "in use?)") from None
    first = next(iter(served.values()))
    print(f"extractbench reference endpoint: {server.base_url}")
    print(f"  OpenAI SDK:    base_url={server.openai_base_url}")
    print(f"  Anthropic SDK: base_url={server.anthropic_base_url}")
    reads = "" if strict_context else f", read by their last {first.prompt_window}"
    print(f"  models: {', '.join(served)} (prompts up to {first.max_prompt_tokens} tokens"
          f"{reads})")
    serve_until_interrupted(server, sorted(set((key_map or DEFAULT_KEY).values())),
                            default_key=key_map is None)


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
    s.add_argument("--key", action="append", metavar="ID=KEY",
                   help="accepted API key (repeatable; visible in `ps`: prefer --key-file or "
                   "EXTRACTBENCH_SERVE_KEYS; with none of them: one key 'local'=sk-local, "
                   "loopback only)")
    s.add_argument("--key-file", metavar="PATH",
                   help="file of accepted API keys, one ID=KEY per line (# comments); adds to "
                   "--key and EXTRACTBENCH_SERVE_KEYS (ID=KEY entries, comma-separated)")
    s.add_argument("--audit-log", help="write defense audit events to this JSONL file")
    s.add_argument("--strict-context", action="store_true",
                   help="refuse prompts longer than the model reads (96 tokens for the shipped "
                   "teachers) and prompt + max_tokens over its context, as vendors do (default: "
                   "a longer prompt is read by its tail; the classification task needs it)")
    s.add_argument("--max-prompt-tokens", type=positive(int), metavar="N",
                   help="without --strict-context, the longest prompt accepted (default 1024)")
    add_limit_options(s)
    s.set_defaults(func=cmd)
