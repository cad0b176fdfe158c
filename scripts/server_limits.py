"""What the reference server's limits do, measured: `extractbench serve` in a child process (its
keys in a key file), then oversized bodies, slow and stalled clients, and memory (the server
process's RSS from /proc) idle and under hundreds of concurrent connections.

    .venv/bin/python scripts/server_limits.py
    .venv/bin/python scripts/server_limits.py --connections 300 --big 60 --compare

Prints: each body size sent and the status (and error type) it got; seconds until the server
cut off a client sending its headers a byte at a time, an idle client and a client that stopped
mid-body; RSS idle, the peak sampled during the load, the process's high-water mark (VmHWM)
and RSS after; with ``--compare``, the same load against a server whose request cap is lifted
(``--max-requests 100000``). Timings depend on the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

KEY = "fake-limits-script-0"
MiB = 1024 * 1024


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing for pid {pid}")


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


class Server:
    """``extractbench serve`` in a child process."""

    def __init__(self, model: str, extra: list[str], key_file: Path) -> None:
        self.model = model
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "extractbench", "serve", "--model", model,
             "--key-file", str(key_file), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert self.proc.stdout is not None
        lines = [self.proc.stdout.readline() for _ in range(5)]
        url = next(line for line in lines if line.startswith("extractbench reference endpoint"))
        self.base_url = url.split(": ", 1)[1].strip()
        host, port = self.base_url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.pid = self.proc.pid

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def chat_body(model: str, size: int | None = None, prompt: str = "12+7=") -> bytes:
    """A valid chat request, padded (a system message the model ignores) to ``size`` bytes."""
    body: dict[str, Any] = {"model": model, "max_tokens": 4, "temperature": 0,
                            "messages": [{"role": "system", "content": ""},
                                         {"role": "user", "content": prompt}]}
    raw = json.dumps(body).encode()
    if size is not None:
        body["messages"][0]["content"] = "x" * max(0, size - len(raw))
        raw = json.dumps(body).encode()
    return raw


HEADERS = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}


def body_limits(srv: Server, limit: int) -> None:
    print("\n## body size (POST /v1/chat/completions, OpenAI shape; /v1/messages, Anthropic)")
    print(f"{'bytes sent':>12}  {'how':<15} {'status':>6}  error type / code   seconds")
    cases: list[tuple[int, str, str]] = [
        (1024, "content-length", "/v1/chat/completions"),
        (limit, "content-length", "/v1/chat/completions"),
        (limit + 1, "content-length", "/v1/chat/completions"),
        (4 * MiB, "content-length", "/v1/chat/completions"),
        (4 * MiB, "chunked", "/v1/chat/completions"),
        (50_000_000, "content-length", "/v1/chat/completions"),
        (4 * MiB, "content-length", "/v1/messages"),
        (4 * MiB, "chunked", "/v1/messages"),
    ]
    with httpx.Client(timeout=120) as client:
        for size, how, path in cases:
            raw = chat_body(srv.model, size)
            content: Any = raw
            if how == "chunked":
                content = (raw[i:i + 65536] for i in range(0, len(raw), 65536))
            start = time.monotonic()
            r = client.post(f"{srv.base_url}{path}", content=content, headers=HEADERS)
            took = time.monotonic() - start
            err = r.json().get("error") if r.status_code != 200 else None
            what = "-" if err is None else f"{err.get('type')} / {err.get('code', '-')}"
            print(f"{len(raw):>12}  {how:<15} {r.status_code:>6}  {what:<19} {took:.2f}")
        r = client.post(f"{srv.base_url}/v1/chat/completions", headers=HEADERS,
                        content=chat_body(srv.model, prompt="9" * 5000))
        print(f"\na 5000-byte prompt: {r.status_code} {r.json()['error']['code']}: "
              f"{r.json()['error']['message']}")


def _closed_after(sock: socket.socket, trickle: bytes | None, gap: float,
                  limit_s: float) -> tuple[float, str]:
    """Seconds until the server answered or closed, and the first line it sent."""
    import select

    start = time.monotonic()
    data = iter(trickle or b"")
    while time.monotonic() - start < limit_s:
        if select.select([sock], [], [], gap)[0]:
            break
        byte = next(data, None)
        if byte is not None:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
    took = time.monotonic() - start
    try:
        answer = sock.recv(4096)
    except OSError:
        answer = b""
    return took, (answer.split(b"\r\n", 1)[0].decode() if answer else "(closed, no answer)")


def slow_clients(srv: Server) -> None:
    print("\n## slow clients (raw sockets)")
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
            + b"".join(b"x-pad-%d: %s\r\n" % (i, b"p" * 40) for i in range(40)))
    cases = [
        ("headers, one byte every 0.5 s", head, 0.5, b""),
        ("connects, sends nothing", None, 0.5, b""),
        ("headers, then 20 of 1000 body bytes", None, 0.5,
         b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
         b"content-length: 1000\r\n\r\n" + b'{"model": "arith-ref"'),
    ]
    for what, trickle, gap, first in cases:
        with socket.create_connection((srv.host, srv.port)) as sock:
            if first:
                sock.sendall(first)
            took, line = _closed_after(sock, trickle, gap, limit_s=300)
        print(f"  {what:<38} cut off after {took:5.1f} s: {line}")


async def _one(host: str, port: int, body: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                 b"authorization: Bearer " + KEY.encode() + b"\r\n"
                 b"content-type: application/json\r\nconnection: close\r\n"
                 b"content-length: %d\r\n\r\n" % len(body) + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def memory(srv: Server, connections: int, big: int, big_size: int, label: str) -> None:
    idle = rss_kib(srv.pid)
    peak = idle
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(srv.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    large = set(range(0, connections, max(1, connections // max(1, big)))[:big])
    bodies = [chat_body(srv.model, big_size if i in large else None)
              for i in range(connections)]

    async def load() -> list[int]:
        return await asyncio.gather(*(_one(srv.host, srv.port, b) for b in bodies))

    sampler.start()
    start = time.monotonic()
    statuses = asyncio.run(load())
    took = time.monotonic() - start
    done.set()
    sampler.join()
    time.sleep(1.0)
    after = rss_kib(srv.pid)
    counts = ", ".join(f"{n} x {s}" for s, n in sorted(Counter(statuses).items()))
    print(f"  {label}: {connections} connections at once ({len(large)} with "
          f"{big_size / MiB:.2f} MiB bodies) in {took:.1f} s -> {counts}")
    print(f"    RSS idle {mib(idle)}, peak during the load {mib(peak)} "
          f"(+{mib(peak - idle)}), VmHWM {mib(rss_kib(srv.pid, 'VmHWM'))}, "
          f"after {mib(after)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="arith-ref")
    ap.add_argument("--connections", type=int, default=300)
    ap.add_argument("--big", type=int, default=60, help="of them, how many send large bodies")
    ap.add_argument("--compare", action="store_true",
                    help="repeat the load with the request cap lifted")
    ap.add_argument("--skip-slow", action="store_true", help="skip the slow-client timings")
    args = ap.parse_args()
    from extractbench.serving import ServerLimits

    limits = ServerLimits()
    print(f"server limits (defaults): {limits}")
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "keys.txt"
        key_file.write_text(f"script={KEY}\n")
        srv = Server(args.model, [], key_file)
        try:
            print(f"serving {args.model} on {srv.base_url} (pid {srv.pid}); "
                  f"RSS idle {mib(rss_kib(srv.pid))}")
            body_limits(srv, limits.max_body_bytes)
            if not args.skip_slow:
                slow_clients(srv)
            print("\n## memory")
            memory(srv, args.connections, args.big, limits.max_body_bytes - 2048,
                   "default limits")
        finally:
            srv.stop()
        if args.compare:
            srv = Server(args.model, ["--max-requests", "100000", "--max-connections", "100000"],
                         key_file)
            try:
                memory(srv, args.connections, args.big, limits.max_body_bytes - 2048,
                       "request cap lifted")
            finally:
                srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
