"""The per-(endpoint, task, seed) reference figures every cell of a run shares, computed once:

- the **teacher's** answers on the held-out split, from the undefended upstream (logged under
  ``eval/`` and resumed from there);
- the **base** scores: the best trivial baseline, the highest-scoring of the best constant
  answer (the held-out split's most frequent answer: an upper bound on any constant or
  format-only predictor), the cell's student recipe trained on the task's public examples (what
  an attacker has without the endpoint) and the recipe trained on nothing;
- the **defended** scores: the held-out split through the defended profile, as benign users
  see it (what ``utility`` divides by the teacher's score).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from extractbench.campaign.oracle import Oracle, RateLimits, RetryPolicy, Segment
from extractbench.config.budget import Budget
from extractbench.config.scenario import Scenario
from extractbench.logs.harvest import HarvestLog, pairs
from extractbench.measure.fit import fit_and_score
from extractbench.measure.fleet import Fleet, RunError
from extractbench.measure.tasks import PUBLIC_EXAMPLES, TaskBank
from extractbench.measure.threads import serving_threads
from extractbench.students import TrainPair
from extractbench.tasks import Task, prompt_hash

__all__ = ["Baselines", "constant_scores", "public_pairs"]

Key = tuple[str, str, int]


class Baselines:
    """Caches of teacher answers, base scores and defended scores for one run."""

    def __init__(self, sc: Scenario, fleet: Fleet, tasks: TaskBank, run_dir: Path,
                 run_id: str) -> None:
        self.sc, self.fleet, self.tasks = sc, fleet, tasks
        self.run_dir, self.run_id = run_dir, run_id
        self._teacher: dict[Key, list[str | None]] = {}
        self._base: dict[tuple[str, str, int], tuple[str, list[float]]] = {}
        self._defended: dict[Key, list[float]] = {}

    def teacher_answers(self, endpoint: str, task_key: str, seed: int) -> list[str | None]:
        """The undefended upstream's extracted answers on the held-out split (cached)."""
        cache_key = (endpoint, task_key, seed)
        if cache_key in self._teacher:
            return self._teacher[cache_key]
        live = self.fleet.upstream[endpoint]
        task = self.tasks.get(task_key, seed)
        items = task.split("heldout")
        log = HarvestLog(self.run_dir / "eval" / f"teacher__{endpoint}__{task_key}__s{seed}.jsonl")
        oracle = Oracle(self.fleet.endpoint_for(live, endpoint, task_key), [live.eval_key],
                        Budget(queries=3 * len(items)), log,
                        prices=live.prices, concurrency=8, retry=RetryPolicy(seed=seed),
                        rates=RateLimits(live.rpm, live.tpm),
                        segment=Segment(run_id=self.run_id, attack="evaluator",
                                        cell_id=f"teacher/{endpoint}/{task_key}/s{seed}"))
        done: dict[str, str] = {e.request.prompt_hash: e.response.text
                                for e in pairs(log.entries())}
        todo = [i.prompt for i in items if prompt_hash(i.prompt) not in done]
        max_tokens = self.fleet.answer_tokens(endpoint, task)

        async def go() -> None:
            try:
                await oracle.query_many(todo, max_tokens=max_tokens, temperature=0.0)
            finally:
                await oracle.aclose()

        serving_threads(lambda: asyncio.run(go()))
        if oracle.fatal_error is not None:
            raise RunError(f"endpoint {endpoint!r}: {oracle.fatal_error.message} "
                           f"({oracle.fatal_error.error_type}; check the API key)")
        done.update({e.request.prompt_hash: e.response.text for e in pairs(log.entries())})
        if not done:
            errs = oracle.stats().errors
            raise RunError(f"endpoint {endpoint!r} at {live.endpoint.base_url} answered no "
                           f"held-out query (errors: {errs or 'none'}); is it reachable?")
        answers = [task.extract(done[prompt_hash(i.prompt)]) if prompt_hash(i.prompt) in done
                   else None for i in items]
        self._teacher[cache_key] = answers
        return answers

    def base_scores(self, task_key: str, student_key: str, seed: int) -> list[float]:
        """The best trivial baseline's held-out scores (cached); :meth:`base_kind` says which
        won."""
        return self._best_base(task_key, student_key, seed)[1]

    def base_kind(self, task_key: str, student_key: str, seed: int) -> str:
        """Which baseline :meth:`base_scores` is: ``constant``, ``public`` or ``nothing``."""
        return self._best_base(task_key, student_key, seed)[0]

    def _best_base(self, task_key: str, student_key: str, seed: int) -> tuple[str, list[float]]:
        cache_key = (task_key, student_key, seed)
        if cache_key not in self._base:
            task = self.tasks.get(task_key, seed)
            spec = self.sc.students[student_key]
            candidates = {
                "constant": constant_scores(task),
                "public": fit_and_score(spec, public_pairs(task), seed, task).scores,
                "nothing": fit_and_score(spec, [], seed, task).scores,
            }
            # the highest mean wins; on a tie the first listed (the cheapest to explain)
            kind = max(candidates, key=lambda k: sum(candidates[k]))
            self._base[cache_key] = (kind, candidates[kind])
        return self._base[cache_key]

    def defended_scores(self, endpoint: str, task_key: str, seed: int) -> list[float]:
        """Held-out scores through the defended profile, as benign users see it (cached). An
        undefended profile answers as the teacher does."""
        from extractbench.campaign.benign import defended_score

        cache_key = (endpoint, task_key, seed)
        if cache_key in self._defended:
            return self._defended[cache_key]
        task = self.tasks.get(task_key, seed)
        items = task.split("heldout")
        live = self.fleet.live[endpoint]
        if live.pipeline is None:
            teacher = self.teacher_answers(endpoint, task_key, seed)
            scores = [task.score(a, i) for a, i in zip(teacher, items, strict=True)]
        else:
            label = f"defended__{endpoint}__{task_key}__s{seed}"
            self.fleet.fresh_defenses(endpoint, label)
            log = self.run_dir / "eval" / f"{label}.jsonl"
            endpoint_ = self.fleet.endpoint_for(live, endpoint, task_key)
            max_tokens = self.fleet.answer_tokens(endpoint, task)
            result = serving_threads(lambda: asyncio.run(defended_score(
                endpoint_, self.fleet.keys.benign_eval, task, items, log_path=log,
                max_tokens=max_tokens, seed=seed, simulated=live.simulated)))
            scores = result.scores
        self._defended[cache_key] = scores
        return scores


def constant_scores(task: Task) -> list[float]:
    """Held-out scores of the best constant answer: the split's most frequent ground-truth
    answer, said every time (first in split order on a tie)."""
    items = task.split("heldout")
    counts = Counter(i.answer for i in items)
    best = max(counts, key=lambda a: counts[a]) if counts else ""
    return [task.score(best, i) for i in items]


def public_pairs(task: Task) -> list[TrainPair]:
    """What an attacker has without the endpoint: the task's public examples with their
    answers (as the task's documentation would show them)."""
    items = task.split("benign")[:PUBLIC_EXAMPLES]
    return [TrainPair(prompt=i.prompt, response=i.answer) for i in items]
