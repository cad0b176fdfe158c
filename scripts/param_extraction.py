"""Parameter extraction through the logit API against the reference teachers: a known-answer
check (extractbench.attacks.param_extraction).

    python scripts/param_extraction.py [--prompts 192] [--teachers classify-ref,...]
                                       [--results results] [--threads 1]

For each teacher, undefended and behind each logprob-guard variant: a real reference server,
the real OpenAI SDK through the oracle (budgeted, priced as the scenario's reference endpoint,
logged), ``--prompts`` prompts from the teacher's task (its attack pool: anything an attacker
may ask). Prints one table row per (teacher, profile): true d_model, the recovered hidden size,
the subspace error, queries and dollars; writes the table and every figure as JSON to
``RESULTS/param_extraction/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PROFILES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "undefended": [],
    "guard-defaults": [("logprob-guard", {})],  # ignores logit_bias, nothing else
    "hide": [("logprob-guard", {"hide": True, "ignore_logit_bias": False})],
    "top-5": [("logprob-guard", {"max_top_logprobs": 5, "ignore_logit_bias": False})],
    "round-0.1": [("logprob-guard", {"round_to": 0.1, "ignore_logit_bias": False})],
    "noise-0.01": [("logprob-guard", {"noise_std": 0.01, "ignore_logit_bias": False})],
    "noise-0.1": [("logprob-guard", {"noise_std": 0.1, "ignore_logit_bias": False})],
}
TEACHER_TASKS = {"classify-ref": ("classification", {"products": 120}),
                 "arith-cot-ref": ("arithmetic", {"digits": 2, "ops": ["+"]}),
                 "cipher-ref": ("cipher", {}), "knowledge-ref": ("knowledge", {"entities": 60})}
PRICE_PER_MTOK = (0.15, 0.60)  # input, output: a small vendor model's list price, for scale


def measure(teacher: str, profile: str, n_prompts: int, out_dir: Path) -> dict[str, Any]:
    from extractbench.attacks.param_extraction import extract_through, recover
    from extractbench.config.budget import Prices
    from extractbench.defenses import DefenseStack
    from extractbench.endpoints.clients import Endpoint
    from extractbench.reference import tokenizer
    from extractbench.reference.teachers import load_reference, model_path
    from extractbench.serving import RunningServer, ServedModel, create_app
    from extractbench.tasks import TASKS

    family, params = TEACHER_TASKS[teacher]
    task = TASKS.get(family)(0, {"attack_pool": n_prompts, "heldout": 10, "benign": 0},
                             **params)
    prompts = [i.prompt for i in task.split("attack_pool")][:n_prompts]
    model = load_reference(teacher)
    head = model.head.weight.detach().double().numpy()  # vocab x d_model: the known answer
    stack = DefenseStack.from_specs(PROFILES[profile], where=profile) if PROFILES[profile] \
        else None
    key = ("attacker-0", "sk-extract-0-9f1c2e")
    app = create_app({teacher: ServedModel.load(teacher, model_path(teacher))},
                     {key[1]: key[0]}, stack)
    vocab = [tokenizer.token_str(t) for t in range(tokenizer.VOCAB_SIZE)]
    log_path = out_dir / f"harvest__{teacher}__{profile}.jsonl"
    log_path.unlink(missing_ok=True)
    with RunningServer(app) as srv:
        ep = Endpoint(api="openai", base_url=srv.openai_base_url, model=teacher)
        logits, spent = extract_through(
            ep, key, prompts, vocab, log_path, queries=n_prompts * tokenizer.VOCAB_SIZE,
            prices=Prices(input_per_mtok=PRICE_PER_MTOK[0], output_per_mtok=PRICE_PER_MTOK[1]))
    got = recover(logits, head)
    return {"teacher": teacher, "profile": profile, "d_model": int(model.cfg.d_model),
            "vocab": tokenizer.VOCAB_SIZE, "prompts": len(prompts),
            "recovered": got.hidden, "tokens_read": got.tokens, "gap_log10": got.gap,
            "sin_angle": got.sin_angle, "residual": got.residual,
            "queries": logits.queries, "failed": logits.failed, "usd": spent.usd,
            "singular": got.singular}


def _cell(v: Any, fmt: str = "{}") -> str:
    return "–" if v is None else fmt.format(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=192)
    ap.add_argument("--teachers", default=",".join(TEACHER_TASKS))
    ap.add_argument("--profiles", default=",".join(PROFILES))
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    out_dir = a.results / "param_extraction"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    head = ("| teacher | profile | d_model | recovered | tokens read | gap (log10) | "
            "sin angle | residual | queries | cost $ |\n|---|---|---|---|---|---|---|---|---|---|")
    print(head)
    for teacher in a.teachers.split(","):
        if teacher not in TEACHER_TASKS:
            print(f"param_extraction: --teachers: unknown teacher {teacher!r} (known: "
                  f"{', '.join(TEACHER_TASKS)})", file=sys.stderr)
            return 2
        for profile in a.profiles.split(","):
            if profile not in PROFILES:
                print(f"param_extraction: --profiles: unknown profile {profile!r} (known: "
                      f"{', '.join(PROFILES)})", file=sys.stderr)
                return 2
            r = measure(teacher, profile, a.prompts, out_dir)
            rows.append(r)
            print(f"| {teacher} | {profile} | {r['d_model']} | {_cell(r['recovered'])} | "
                  f"{r['tokens_read']} of {r['vocab']} | {r['gap_log10']:.2f} | "
                  f"{_cell(r['sin_angle'], '{:.1e}')} | {_cell(r['residual'], '{:.1e}')} | "
                  f"{r['queries']:,} | {r['usd']:.4f} |", flush=True)
    (out_dir / "param_extraction.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
