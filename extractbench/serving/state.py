"""What the app holds between requests, and the request pipeline every route runs:
query index -> defense check -> generation with the defense's logits processors -> transform.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from extractbench.defenses import Api, DefenseStack, RequestContext
from extractbench.reference.served import ServedModel
from extractbench.serving.errors import ApiError
from extractbench.types import Generation, SamplingParams


@dataclass
class ServerState:
    models: dict[str, ServedModel]
    keys: dict[str, str]
    """API key -> key id."""
    stack: DefenseStack = field(default_factory=DefenseStack)
    started: float = field(default_factory=time.time)
    _counts: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def model(self, name: str) -> ServedModel:
        served = self.models.get(name)
        if served is None:
            raise ApiError(
                404,
                f"The model `{name}` does not exist (served: {', '.join(sorted(self.models))}).",
                param="model",
                code="model_not_found",
            )
        return served

    def next_index(self, key_id: str) -> int:
        """This key's query index (0 for its first request), then count the request."""
        with self._lock:
            index = self._counts[key_id]
            self._counts[key_id] += 1
            return index

    def run(
        self,
        api: Api,
        route: str,
        key_id: str,
        served: ServedModel,
        prompt: str,
        params: SamplingParams,
        n: int = 1,
    ) -> list[Generation]:
        """Check, generate and transform one request (blocking: call from a worker thread)."""
        ctx = RequestContext(
            api=api,
            route=route,
            key_id=key_id,
            index=self.next_index(key_id),
            model=served.name,
            prompt=prompt,
            params=params,
            n=n,
        )
        rejection = self.stack.check_request(ctx)
        if rejection is not None:
            raise ApiError.from_rejection(rejection)
        ctx = self.stack.adjust(ctx)
        processors = self.stack.logits_processors(ctx)
        generations = served.generate(prompt, ctx.params, n, processors)
        return self.stack.transform(ctx, generations)

    def reset(self) -> None:
        """Start every key's query index at 0 again and forget the defenses' per-key state
        (between benchmark cells)."""
        with self._lock:
            self._counts.clear()
        self.stack.reset()
