"""``extractbench serve`` as a user runs it: a process that prints where it serves, answers the
official SDK, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from extractbench.reference.teachers import model_path

pytestmark = pytest.mark.skipif(not model_path("arith-ref").exists(),
                                reason="reference weights missing (extractbench train-reference)")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_prints_its_url_and_key_ids_answers_the_sdk_and_stops_cleanly(
        sig: signal.Signals) -> None:
    with subprocess.Popen(
            [sys.executable, "-m", "extractbench", "serve", "--model", "arith-ref",
             "--key", "team-a=fake-serve-test-1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            # as from a background job: SIGINT ignored on start, which Python would inherit
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) as proc:
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(5)]
            openai_line = next(line for line in lines if "OpenAI SDK" in line)
            base_url = openai_line.split("base_url=")[1].strip()
            assert any(line.strip() == "key ids: team-a" for line in lines), lines
            assert not any("fake-serve-test-1" in line for line in lines)
            with openai.OpenAI(base_url=base_url, api_key="fake-serve-test-1",
                               max_retries=0) as client:
                out = client.chat.completions.create(
                    model="arith-ref", messages=[{"role": "user", "content": "2+3="}],
                    max_tokens=4)
            assert out.choices[0].message.content
        finally:
            proc.send_signal(sig)
            try:
                rc = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    assert rc == 0


def test_a_busy_port_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from extractbench.cli.main import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--model", "arith-ref", "--port", str(port),
                     "--key", "a=fake-busy-test"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"extractbench: --host/--port: cannot serve on 127.0.0.1:{port}")
    assert "Traceback" not in "\n".join(err)


@pytest.mark.parametrize("command", ["serve", "proxy"])
def test_every_interface_with_the_public_default_key_is_refused(
        command: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from extractbench.cli.main import main

    monkeypatch.setenv("EB_TEST_UPSTREAM", "upstream-secret-value")
    extra = ["--upstream", "http://127.0.0.1:9/v1", "--api", "openai", "--upstream-key-env",
             "EB_TEST_UPSTREAM", "--no-check"] if command == "proxy" else ["--model", "arith-ref"]
    assert main([command, "--host", "0.0.0.0", *extra]) == 2
    assert "needs explicit keys (--key ID=KEY)" in capsys.readouterr().err


# -- keys from a file or the environment (not argv, which `ps` shows) ------------------------


def _serve(*argv: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "extractbench", "serve", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)


def test_serve_takes_keys_from_a_file_and_the_environment_and_argv_never_shows_them(
        tmp_path: Path) -> None:
    key_file = tmp_path / "keys.txt"
    key_file.write_text("# client keys\nteam-file = fake-file-secret-41\n\n")
    env = {**os.environ, "EXTRACTBENCH_SERVE_KEYS": "team-env=fake-env-secret-42"}
    with _serve("--model", "arith-ref", "--key-file", str(key_file), "--strict-context",
                env=env) as proc:
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(5)]
            assert any(line.strip() == "key ids: team-env, team-file" for line in lines), lines
            assert any("models: arith-ref (prompts up to 96 tokens)" in line for line in lines)
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            assert b"fake-file-secret-41" not in cmdline and b"fake-env-secret-42" not in cmdline
            base_url = next(line for line in lines if "OpenAI SDK" in line).split("=")[1].strip()
            for key in ("fake-file-secret-41", "fake-env-secret-42"):
                with openai.OpenAI(base_url=base_url, api_key=key, max_retries=0) as client:
                    out = client.chat.completions.create(
                        model="arith-ref", messages=[{"role": "user", "content": "2+3="}],
                        max_tokens=4)
                    assert out.choices[0].message.content
            with openai.OpenAI(base_url=base_url, api_key="fake-file-secret-41",
                               max_retries=0) as client, pytest.raises(
                    openai.BadRequestError) as err:
                client.chat.completions.create(
                    model="arith-ref", messages=[{"role": "user", "content": "9" * 200}],
                    max_tokens=4)
            assert err.value.code == "context_length_exceeded"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    assert rc == 0


def _proxy_argv(*extra: str) -> list[str]:
    return ["proxy", "--upstream", "http://127.0.0.1:9/v1", "--api", "openai",
            "--upstream-key-env", "EB_TEST_UPSTREAM", "--no-check", *extra]


BAD_KEY_FILES = [
    (None, "cannot read key file: No such file or directory"),
    ("good=fake-good-key-1\nfake-secret-without-id-77\n", "line 2: expected ID=KEY"),
    ("# only a comment\n\n", "no keys in the key file"),
    ("a=fake-shared-secret-3\nb=fake-shared-secret-3\n", "one key is given for two ids, a and b"),
]


@pytest.mark.parametrize("command", ["serve", "proxy"])
@pytest.mark.parametrize(("text", "expected"), BAD_KEY_FILES,
                         ids=["missing", "no-id", "empty", "shared"])
def test_a_bad_key_file_is_one_line_naming_the_file_and_exit_2(
        command: str, text: str | None, expected: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from extractbench.cli.main import main

    monkeypatch.setenv("EB_TEST_UPSTREAM", "upstream-secret-value")
    monkeypatch.delenv("EXTRACTBENCH_SERVE_KEYS", raising=False)
    monkeypatch.delenv("EXTRACTBENCH_PROXY_KEYS", raising=False)
    key_file = tmp_path / "keys.txt"
    if text is not None:
        key_file.write_text(text)
    argv = (["serve", "--model", "arith-ref", "--key-file", str(key_file)] if command == "serve"
            else _proxy_argv("--key-file", str(key_file)))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"extractbench: {key_file}")
    assert expected in err
    for secret in ("fake-good-key-1", "fake-secret-without-id-77", "fake-shared-secret-3"):
        assert secret not in err  # no key is echoed


@pytest.mark.parametrize("command", ["serve", "proxy"])
def test_a_bad_keys_variable_is_one_line_and_exit_2(
        command: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from extractbench.cli.main import main

    var = "EXTRACTBENCH_SERVE_KEYS" if command == "serve" else "EXTRACTBENCH_PROXY_KEYS"
    monkeypatch.setenv("EB_TEST_UPSTREAM", "upstream-secret-value")
    monkeypatch.setenv(var, "a=fake-env-good-1, fake-env-secret-no-id")
    argv = ["serve", "--model", "arith-ref"] if command == "serve" else _proxy_argv()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{var}: entry 2: expected ID=KEY" in err
    assert "fake-env-secret-no-id" not in err and "fake-env-good-1" not in err


def test_keys_from_a_file_or_the_environment_count_as_explicit(tmp_path: Path) -> None:
    from extractbench.cli.profile import ServeError, check_bind, load_keys

    key_file = tmp_path / "keys.txt"
    key_file.write_text("team-a=fake-a-1\n")
    env = "EXTRACTBENCH_SERVE_KEYS"
    check_bind("0.0.0.0", load_keys(None, str(key_file), env, environ={}))
    check_bind("0.0.0.0", load_keys(None, None, env, environ={env: "team-b=fake-b-1"}))
    assert load_keys(["team-c=fake-c-1"], str(key_file), env, environ={env: "team-b=fake-b-1"}) == {
        "fake-a-1": "team-a", "fake-b-1": "team-b", "fake-c-1": "team-c"}
    assert load_keys(None, None, env, environ={}) is None
    with pytest.raises(ServeError, match="needs explicit keys"):
        check_bind("0.0.0.0", load_keys(None, None, env, environ={}))


def test_the_proxy_takes_both_keys_from_files(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from extractbench.cli.proxy import add_proxy_command, start_proxy

    monkeypatch.delenv("EXTRACTBENCH_PROXY_KEYS", raising=False)
    (tmp_path / "upstream.key").write_text("\nfake-upstream-secret-9\n")
    (tmp_path / "clients.txt").write_text("team-a=fake-client-a\nteam-b=fake-client-b\n")
    parser = argparse.ArgumentParser()
    add_proxy_command(parser.add_subparsers())
    args = parser.parse_args([
        "proxy", "--upstream", "http://127.0.0.1:9/v1", "--api", "openai", "--no-check",
        "--upstream-key-file", str(tmp_path / "upstream.key"),
        "--key-file", str(tmp_path / "clients.txt"), "--max-body-bytes", "4096"])
    server, key_ids = start_proxy(args)
    try:
        assert key_ids == ["team-a", "team-b"]
        assert server.limits.max_body_bytes == 4096
        assert server.app.state.extractbench_upstream._upstream_key == "fake-upstream-secret-9"
    finally:
        server.stop()


@pytest.mark.parametrize(("text", "expected"), [
    (None, "cannot read the upstream key file"), ("\n\n", "the upstream key file is empty")])
def test_a_bad_upstream_key_file_is_one_line(text: str | None, expected: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from extractbench.cli.main import main

    path = tmp_path / "upstream.key"
    if text is not None:
        path.write_text(text)
    assert main(["proxy", "--upstream", "http://127.0.0.1:9/v1", "--api", "openai",
                 "--upstream-key-file", str(path), "--no-check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: {expected}" in err


# -- the limit options -----------------------------------------------------------------------


def test_the_limit_options_say_the_server_defaults_and_set_them(
        capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    import re

    from extractbench.cli.common import LIMIT_OPTIONS, add_limit_options
    from extractbench.cli.main import build_parser
    from extractbench.cli.profile import limits_of
    from extractbench.reference.served import DEFAULT_MAX_PROMPT_TOKENS
    from extractbench.serving import ServerLimits

    parser = argparse.ArgumentParser()
    add_limit_options(parser)
    defaults = ServerLimits()
    documented = {a.dest: re.search(r"\(default (\S+)\)", a.help or "")
                  for a in parser._actions if a.dest in LIMIT_OPTIONS}
    assert documented.keys() == LIMIT_OPTIONS.keys()
    for dest, found in documented.items():
        assert found is not None, dest
        assert float(found.group(1)) == getattr(defaults, LIMIT_OPTIONS[dest]), dest
    serve_help = build_parser().parse_args(["serve"])  # defaults: None -> ServerLimits()
    assert limits_of(serve_help) == defaults
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    assert f"accepted (default {DEFAULT_MAX_PROMPT_TOKENS})" in " ".join(
        capsys.readouterr().out.split())
    given = build_parser().parse_args(["serve", "--max-body-bytes", "100", "--header-timeout",
                                       "0.5", "--max-requests", "3"])
    assert limits_of(given) == ServerLimits(max_body_bytes=100, header_timeout_s=0.5,
                                            max_requests=3)
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["serve", "--body-timeout", "0"])
    assert exit_.value.code == 2
