"""Splits assigned by content, independent of split sizes, and the held-out content an attack
may not ask about.

Every content key (the problem, word, ticket or question, not its wording; see each family)
gets a **position** in [0, 1): a hash of (family, seed, key), or an order the family defines
(knowledge spreads each fact's phrasings over the range). The contents are laid out by
position and the splits are taken from the two ends:

- **held-out and benign from the low end.** Walking up from 0, the third content of every
  three is benign's and the other two are held-out's (by rank in the space's order).
  ``heldout: N`` is the first N held-out contents, ``benign: M`` the first M benign ones, one
  item (one wording) each.
- **the attack pool from the high end.** Walking down from 1, every item of each content (every
  wording variant: ``47 + 38`` and ``38 + 47``), until ``attack_pool`` items.

So a split's membership is a function of the family, the seed, the space and its own size
only: growing a split adds items to it and moves no item between splits; variants of one
content (commuted twins) always share a split; held-out and benign never share a content,
whatever the sizes; held-out and the pool are disjoint by content, and sizes for which the two
ends would meet are a one-line error saying what to lower.

Spaces too large to enumerate (cipher words, large arithmetic) are drawn from a seeded stream
that does not depend on the sizes: a content at a position below :data:`RESERVED` is held-out's
or benign's (a second hash decides, two to one), any other the pool's, and each split takes the
first contents of its kind that the stream meets.

:class:`HeldOutContent` is what hygiene checks: the held-out content keys of a task and, for
any prompt, the held-out key it asks about (:meth:`~HeldOutContent.forbids`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

from extractbench.tasks.base import SPLITS, SplitName, Task, prompt_index
from extractbench.tasks.wording import normalise

__all__ = ["BENIGN_EVERY", "RESERVED", "STALL", "HeldOutContent", "assign", "assign_drawn",
           "keys_of", "pick", "position", "split_sizes"]

V = TypeVar("V")
H = TypeVar("H", bound=Hashable)

BENIGN_EVERY = 3
"""On the low end, every third content is benign's; the other two are held-out's."""
RESERVED = 0.5
"""Drawn spaces: contents at positions below this are held-out's or benign's, the rest the
pool's."""
STALL = 20_000
"""Drawn spaces: draws in a row that add nothing before the stream gives up."""
_VERSION = "extractbench-splits-v1"

Assigned = dict[SplitName, list[tuple[str, V]]]


def position(family: str, seed: int, key: str, salt: str = "") -> float:
    """A content's place in [0, 1): a hash of (family, seed, key) (``salt`` draws another,
    independent one)."""
    digest = hashlib.blake2b(f"{_VERSION}|{family}|{seed}|{salt}|{key}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def pick(family: str, seed: int, key: str, n: int, salt: str) -> int:
    """A choice among ``n`` (a wording, a variant) fixed by the content key."""
    return 0 if n <= 1 else int(position(family, seed, key, salt) * n)


def split_sizes(sizes: Mapping[str, int]) -> dict[SplitName, int]:
    """The requested size of each split (0 when absent); negative sizes are an error."""
    need: dict[SplitName, int] = {s: int(sizes.get(s, 0)) for s in SPLITS}
    bad = [f"{s}={n}" for s, n in need.items() if n < 0]
    if bad:
        raise ValueError(f"split sizes must be >= 0 (got {', '.join(bad)})")
    return need


def assign(family: str, seed: int, contents: Mapping[str, Sequence[V]],
           sizes: Mapping[str, int], what: str, *,
           order: Callable[[str], float] | None = None,
           pool_up_to: bool = False) -> Assigned[V]:
    """Split an enumerated space: ``contents`` maps each content key to its variants (at least
    one each, in a fixed order). Returns ``(key, variant)`` pairs per split: one variant per
    held-out and benign content, every variant of a pool content. ``order`` replaces the
    hashed position; with ``pool_up_to`` a short space gives the pool what is left instead of
    an error. ``what`` names the space in errors."""
    need = split_sizes(sizes)
    where = order or (lambda k: position(family, seed, k))
    keys = sorted(contents, key=lambda k: (where(k), k))
    out: Assigned[V] = {s: [] for s in SPLITS}
    reach = 0  # contents below this rank are held-out's or benign's
    rank = 0
    while rank < len(keys) and (len(out["heldout"]) < need["heldout"]
                                or len(out["benign"]) < need["benign"]):
        split: SplitName = "benign" if rank % BENIGN_EVERY == BENIGN_EVERY - 1 else "heldout"
        if len(out[split]) < need[split]:
            key = keys[rank]
            variants = contents[key]
            out[split].append((key, variants[pick(family, seed, key, len(variants), "variant")]))
            reach = rank + 1
        rank += 1
    reserved: tuple[SplitName, ...] = ("heldout", "benign")
    for s in reserved:
        if len(out[s]) < need[s]:
            room = sum(1 for r in range(len(keys))
                       if (r % BENIGN_EVERY == BENIGN_EVERY - 1) == (s == "benign"))
            share = 1 if s == "benign" else BENIGN_EVERY - 1
            raise ValueError(
                f"{s}={need[s]} but {what} has only {room} contents for {s} ({share} in "
                f"every {BENIGN_EVERY} of its {len(keys)}); lower {s} or make the task larger")
    pool = out["attack_pool"]
    for key in reversed(keys[reach:]):
        if len(pool) >= need["attack_pool"]:
            break
        variants = contents[key]
        for i in _variant_order(family, seed, key, len(variants)):
            if len(pool) >= need["attack_pool"]:
                break
            pool.append((key, variants[i]))
    if len(pool) < need["attack_pool"] and not pool_up_to:
        left = sum(len(contents[k]) for k in keys[reach:])
        raise ValueError(
            f"attack_pool={need['attack_pool']} but {what} has only {left} items left for it "
            f"beyond heldout={need['heldout']} and benign={need['benign']} (of "
            f"{sum(map(len, contents.values()))}); lower attack_pool, heldout or benign, or make "
            "the task larger")
    return out


def _variant_order(family: str, seed: int, key: str, n: int) -> list[int]:
    if n <= 1:
        return list(range(n))
    return sorted(range(n), key=lambda i: position(family, seed, f"{key}#{i}", "pool"))


def assign_drawn(family: str, seed: int, draws: Iterable[tuple[str, H]],
                 sizes: Mapping[str, int], what: str, space: int | None = None) -> Assigned[H]:
    """Split a space too large to enumerate: ``draws`` yields ``(key, variant)`` from a seeded
    stream that must not depend on the sizes (it is read only until every split is full). A
    key below :data:`RESERVED` is held-out's or benign's by a second hash (two to one); the
    others are the pool's. Held-out and benign take the first variant met of each content;
    the pool takes distinct variants. ``space`` (how many variants there are at most) turns
    sizes that cannot fit into an error before any draw; the stream also gives up after
    :data:`STALL` draws in a row that add nothing."""
    need = split_sizes(sizes)
    if space is not None and max(need["attack_pool"],
                                 need["heldout"] + need["benign"]) > space * (1 - RESERVED):
        raise ValueError(
            f"{what} has only {space} items, about half of them for the pool and half for "
            f"held-out and benign; lower attack_pool, heldout or benign, or make the task "
            "larger")
    out: Assigned[H] = {s: [] for s in SPLITS}
    seen: set[str] = set()
    pooled: set[tuple[str, H]] = set()
    n = stalled = 0

    def full() -> bool:
        return all(len(out[s]) >= need[s] for s in SPLITS)

    for key, variant in draws:
        if full() or stalled >= STALL:
            break
        n += 1
        stalled += 1
        if position(family, seed, key) < RESERVED:
            if key in seen:
                continue
            seen.add(key)
            benign = position(family, seed, key, "colour") < 1 / BENIGN_EVERY
            split: SplitName = "benign" if benign else "heldout"
            if len(out[split]) < need[split]:
                out[split].append((key, variant))
                stalled = 0
        elif (key, variant) not in pooled and len(out["attack_pool"]) < need["attack_pool"]:
            pooled.add((key, variant))
            out["attack_pool"].append((key, variant))
            stalled = 0
    if not full():
        got = ", ".join(f"{s}={len(out[s])}/{need[s]}" for s in SPLITS)
        raise ValueError(
            f"{what} has only so many items: {n} draws filled {got}; lower attack_pool, heldout "
            "or benign, or make the task larger")
    return out


def keys_of(task: Task) -> Callable[[str], tuple[str, ...]]:
    """How ``task`` maps any prompt to the content keys it asks about: its ``content_keys``,
    else its ``content_key``, else (a task that defines neither) the key of the split item
    whose prompt reads the same after :func:`~extractbench.tasks.wording.normalise`."""
    many = getattr(type(task), "content_keys", None)
    if callable(many) and many is not Task.content_keys:
        return lambda prompt: tuple(task.content_keys(prompt))
    one = getattr(type(task), "content_key", None)
    if callable(one) and one is not Task.content_key:
        def single(prompt: str) -> tuple[str, ...]:
            key = task.content_key(prompt)
            return () if key is None else (key,)
        return single
    index = prompt_index(task)
    suffix = getattr(task, "reasoning_suffix", None)

    def by_wording(prompt: str) -> tuple[str, ...]:
        key = index.get(normalise(prompt, (suffix,)))
        return () if key is None else (key,)
    return by_wording


class HeldOutContent:
    """The held-out content of a task: what no attack may ask about, in any wording.

    ``forbids(prompt)`` is the held-out content key a prompt asks about (``None``: it may be
    sent); ``overlap(prompts)`` counts the distinct held-out contents that a list of prompts
    asks about (a record's ``heldout_overlap``). Built once per task; each call parses one
    prompt.
    """

    def __init__(self, task: Task) -> None:
        self.keys: frozenset[str] = frozenset(i.key for i in task.split("heldout"))
        self._keys_of = keys_of(task)

    def forbids(self, prompt: str) -> str | None:
        """The first held-out content key ``prompt`` asks about, or ``None``."""
        for key in self._keys_of(prompt):
            if key in self.keys:
                return key
        return None

    def may_send(self, prompt: str) -> bool:
        """Whether ``prompt`` asks about no held-out content (an ``AttackContext.may_send``)."""
        return self.forbids(prompt) is None

    def asked(self, prompts: Iterable[str]) -> set[str]:
        """The held-out content keys that ``prompts`` ask about."""
        return {k for p in prompts for k in self._keys_of(p) if k in self.keys}

    def overlap(self, prompts: Iterable[str]) -> int:
        """How many distinct held-out contents ``prompts`` ask about."""
        return len(self.asked(prompts))
