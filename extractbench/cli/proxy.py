"""``extractbench proxy``: put a defense profile in front of a remote endpoint.

    extractbench proxy --upstream https://api.openai.com/v1 --api openai \\
        --upstream-key-env OPENAI_API_KEY --profile profiles/guarded.yaml --key team-a=sk-team-a

The upstream key comes from the variable named by ``--upstream-key-env`` or from the file
``--upstream-key-file``; client keys from ``--key ID=KEY``, a ``--key-file`` (one ``ID=KEY`` per
line) and the ``EXTRACTBENCH_PROXY_KEYS`` variable, together (the last two keep keys out of
``ps``). Every problem found before serving (unknown defense, parameter out of range,
sampling-time defense in the profile, missing key variable or unreadable key file, unreachable
upstream, upstream refusing the key) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from extractbench.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    add_limit_options,
    serve_until_interrupted,
)
from extractbench.errors import ExtractbenchError
from extractbench.secret import Secret


class ProxyError(ExtractbenchError):
    """A bad ``proxy`` argument or an upstream that cannot be used; one line."""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``proxy`` on an ``argparse`` sub-parsers object (``func`` returns the exit
    code, like the other commands)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "proxy", help="serve a defense profile in front of a remote endpoint",
        description="Serve the OpenAI chat completions (or Anthropic messages) API in front of "
        "UPSTREAM, applying the profile's request- and response-stage defenses. Clients use "
        "their own keys (--key, --key-file, EXTRACTBENCH_PROXY_KEYS); the proxy calls upstream "
        "with the key in --upstream-key-env or --upstream-key-file and never forwards or logs "
        "either.")
    p.add_argument("--upstream", required=True,
                   help="upstream base URL as the SDK expects it: https://api.openai.com/v1 "
                   "(openai) or https://api.anthropic.com (anthropic)")
    p.add_argument("--api", required=True, choices=["openai", "anthropic"],
                   help="the API family the upstream speaks (and the proxy serves)")
    upstream_key = p.add_mutually_exclusive_group(required=True)
    upstream_key.add_argument("--upstream-key-env", metavar="VAR",
                              help="environment variable holding the upstream API key")
    upstream_key.add_argument("--upstream-key-file", metavar="PATH",
                              help="file holding the upstream API key (its first line)")
    p.add_argument("--profile", help="YAML file with a `defenses:` list (default: none)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--key", action="append", metavar="ID=KEY",
                   help="accepted client key (repeatable; visible in `ps`: prefer --key-file or "
                   "EXTRACTBENCH_PROXY_KEYS; with none of them: 'local'=sk-local, loopback "
                   "only)")
    p.add_argument("--key-file", metavar="PATH",
                   help="file of accepted client keys, one ID=KEY per line (# comments); adds "
                   "to --key and EXTRACTBENCH_PROXY_KEYS (ID=KEY entries, comma-separated)")
    p.add_argument("--audit-log", help="write defense audit events to this JSONL file")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for the upstream per request (default 60)")
    p.add_argument("--no-check", action="store_true",
                   help="do not probe the upstream (GET models) before serving")
    add_limit_options(p)
    p.set_defaults(func=cmd_proxy)
    return p


def cmd_proxy(args: argparse.Namespace) -> int:
    from extractbench.cli.profile import PROXY_KEYS_ENV

    try:
        server, key_ids = start_proxy(args)
    except ProxyError as exc:
        print(f"extractbench: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"extractbench defense proxy: {server.base_url} -> {args.upstream} ({args.api})")
    base = server.openai_base_url if args.api == "openai" else server.anthropic_base_url
    print(f"  {'OpenAI' if args.api == 'openai' else 'Anthropic'} SDK: base_url={base}")
    default = not (args.key or getattr(args, "key_file", None)
                   or os.environ.get(PROXY_KEYS_ENV, "").strip())
    serve_until_interrupted(server, key_ids, default_key=default)
    return EXIT_OK


def start_proxy(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """Build and start the proxy from parsed arguments; raises :class:`ProxyError`."""
    from extractbench.cli.profile import (
        DEFAULT_KEY,
        PROXY_KEYS_ENV,
        ServeError,
        check_bind,
        limits_of,
        load_keys,
        load_profile,
    )
    from extractbench.defenses import AuditLog, DefenseConfigError, DefenseStack
    from extractbench.serving import RunningServer
    from extractbench.serving.proxy import create_proxy_app

    upstream_key, key_source = _upstream_key(args)
    try:
        given = load_keys(args.key, getattr(args, "key_file", None), PROXY_KEYS_ENV)
        check_bind(args.host, given, PROXY_KEYS_ENV)
        keys = given or dict(DEFAULT_KEY)
        specs = load_profile(args.profile).defenses if args.profile else []
    except ServeError as exc:
        raise ProxyError(str(exc)) from None
    audit = AuditLog(Path(args.audit_log)) if args.audit_log else None
    where = f"{args.profile}: defenses" if args.profile else "defenses"
    try:
        stack = DefenseStack.from_specs(specs, audit, where=where)
        app = create_proxy_app(args.upstream, args.api, upstream_key, stack, keys,
                               timeout_s=args.timeout)
    except DefenseConfigError as exc:
        raise ProxyError(str(exc)) from None
    except ValueError as exc:
        raise ProxyError(f"{args.profile or '--upstream'}: {exc}") from None
    if not args.no_check:
        check_upstream(args.upstream, args.api, upstream_key, key_source,
                       timeout_s=min(args.timeout, 15.0))
    try:
        server = RunningServer(app, host=args.host, port=args.port,
                               limits=limits_of(args)).start()
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise ProxyError(f"--host/--port: cannot serve on {args.host}:{args.port} "
                         f"({exc})") from None
    return server, sorted(set(keys.values()))


def _upstream_key(args: argparse.Namespace) -> tuple[str, str]:
    """The upstream key and where it came from (``VAR`` or ``the file PATH``)."""
    path = getattr(args, "upstream_key_file", None)
    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not a text file"
            raise ProxyError(f"{path}: cannot read the upstream key file: {why} "
                             "(--upstream-key-file takes a file holding the key)") from None
        key = next((line.strip() for line in lines if line.strip()), "")
        if not key:
            raise ProxyError(f"{path}: the upstream key file is empty (write the key on its "
                             "first line)")
        return Secret(key), f"the file {path}"
    var = args.upstream_key_env
    key = os.environ.get(var, "")
    if not key:
        raise ProxyError(f"--upstream-key-env: environment variable {var} is not set "
                         f"(export {var}=... with the upstream key)")
    return Secret(key), var


def check_upstream(base_url: str, api: str, upstream_key: str, key_env: str,
                   timeout_s: float = 15.0) -> None:
    """Probe ``GET models`` once: unreachable, or a refused key, is a :class:`ProxyError`
    naming ``key_env`` (the key's variable, or ``the file PATH``). Any other answer (even a
    404: not every server lists models) counts as reachable."""
    import httpx

    from extractbench.endpoints.clients import scrub
    from extractbench.serving.upstream import ANTHROPIC_VERSION

    base = base_url.rstrip("/")
    url = f"{base}/models" if api == "openai" else f"{base}/v1/models"
    headers = ({"authorization": f"Bearer {upstream_key}"} if api == "openai"
               else {"x-api-key": upstream_key, "anthropic-version": ANTHROPIC_VERSION})
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ProxyError(f"--upstream: {base_url} is unreachable ({type(exc).__name__}); "
                         "check the URL and that the server is up") from None
    if resp.status_code in (401, 403):
        detail = scrub(resp.text.splitlines()[0][:200] if resp.text else "", [upstream_key])
        option = "--upstream-key-file" if key_env.startswith("the file ") else "--upstream-key-env"
        raise ProxyError(f"{option}: the upstream refused the key in {key_env} "
                         f"(HTTP {resp.status_code}{': ' + detail if detail else ''})")


add_proxy_command = register  # the name plugin code and older tests know
