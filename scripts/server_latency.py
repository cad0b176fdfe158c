"""The reference server's latency at concurrency 1 against its own model's generation time.

Prints, for one shipped teacher and one prompt, the mean time of a request through the
embedded reference server (the official ``openai`` SDK, keep-alive, one request at a time)
next to the same generation in-process, and their ratio (issue 16's bound: within 2x). Run
on an idle machine; both sides are measured in the same process, interleaved.

    python scripts/server_latency.py [--model classify-ref] [--n 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

import openai
import torch

from extractbench.defenses import DefenseStack
from extractbench.reference.generation import generate
from extractbench.reference.teachers import load_reference
from extractbench.serving import RunningServer, ServedModel, create_app
from extractbench.types import SamplingParams

KEY = "fake-lat-0-1a2b3c4d"
PROMPT = "Which team? Ticket: my Quillex arrived broken."


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="classify-ref")
    ap.add_argument("--n", type=int, default=200, help="requests per side")
    ap.add_argument("--max-tokens", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_reference(args.model)
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens)
    app = create_app({args.model: ServedModel(args.model, model)}, {KEY: "attacker-0"},
                     DefenseStack())
    served: list[float] = []
    local: list[float] = []
    with RunningServer(app) as srv, openai.OpenAI(base_url=srv.openai_base_url, api_key=KEY,
                                                  max_retries=0) as client:
        def ask() -> None:
            client.chat.completions.create(
                model=args.model, max_tokens=args.max_tokens, temperature=0.0,
                messages=[{"role": "user", "content": PROMPT}])

        for _ in range(10):  # warm both paths
            ask()
            generate(model, [PROMPT], params)
        for _ in range(args.n):
            t = time.perf_counter()
            ask()
            served.append(time.perf_counter() - t)
            t = time.perf_counter()
            generate(model, [PROMPT], params)
            local.append(time.perf_counter() - t)
    s, m = statistics.mean(served) * 1000, statistics.mean(local) * 1000
    print(f"{args.model}, {args.max_tokens} tokens, {args.n} requests each, concurrency 1")
    print(f"through the server: {s:.2f} ms (median {statistics.median(served) * 1000:.2f})")
    print(f"in-process generate: {m:.2f} ms (median {statistics.median(local) * 1000:.2f})")
    print(f"ratio: {s / m:.2f}x")


if __name__ == "__main__":
    main()
