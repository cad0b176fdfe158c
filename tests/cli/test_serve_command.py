"""``extractbench serve`` as a user runs it: a process that prints where it serves, answers the
official SDK, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys

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
             "--key", "team-a=sk-serve-test-1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            # as from a background job: SIGINT ignored on start, which Python would inherit
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) as proc:
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(5)]
            openai_line = next(line for line in lines if "OpenAI SDK" in line)
            base_url = openai_line.split("base_url=")[1].strip()
            assert any(line.strip() == "key ids: team-a" for line in lines), lines
            assert not any("sk-serve-test-1" in line for line in lines)
            with openai.OpenAI(base_url=base_url, api_key="sk-serve-test-1",
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
                     "--key", "a=sk-busy-test"]) == 2
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
