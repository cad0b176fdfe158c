"""Private knowledge: questions about a generated knowledge base of fictional people (home
town, job, favourite colour, pet), each fact asked in four phrasings.

The knowledge base is fixed (the teacher memorised it); the task seed only decides which
questions go to which split. Splits are disjoint by *question* (fact and phrasing): every
held-out question is about a fact whose other phrasings stay available to the attack pool,
and never appears there itself. So a student can answer a held-out question only if the
attack asked about that same person and attribute in other words — coverage matters, and an
attacker who never asks about an entity cannot know it.
"""

from __future__ import annotations

import random

from pydantic import Field

from extractbench.registry import PluginParams
from extractbench.tasks.answers import clean, final_part, last_label
from extractbench.tasks.base import TASKS, SplitName, TaskItem

REFERENCE_MODEL = "knowledge-ref"
MAX_ENTITIES = 200  # people in the knowledge base the reference teacher memorised
RESERVED = 2  # phrasings per fact that may go to held-out/benign; the rest stay poolable
_SECRET = "extractbench-knowledge-v1"

VALUES: dict[str, tuple[str, ...]] = {
    "town": ("Brindlemoor", "Caskwell", "Dunmarrow", "Eldhaven", "Fennick", "Gorsebury",
             "Holloway", "Ivenholt", "Jarrowick", "Kestermere", "Lowenby", "Marrowdale",
             "Nettlecombe", "Orrisford", "Pellinger", "Quarrington"),
    "job": ("baker", "pilot", "glassblower", "cartographer", "beekeeper", "violinist",
            "surveyor", "locksmith", "astronomer", "potter", "tailor", "blacksmith",
            "librarian", "gardener", "chemist", "sculptor"),
    "colour": ("red", "orange", "yellow", "green", "teal", "blue", "indigo", "violet", "pink",
               "brown", "grey", "black"),
    "pet": ("cat", "dog", "parrot", "tortoise", "rabbit", "ferret", "goat", "owl", "hedgehog",
            "goldfish", "lizard", "pony"),
}
ATTRIBUTES = tuple(VALUES)
TEMPLATES: dict[str, tuple[str, ...]] = {
    "town": ("Where does {e} live? Answer with the town only.",
             "In which town does {e} live? Reply with the town name only.",
             "What is the home town of {e}? Answer with the town only.",
             "{e} lives in which town? Give the town name only."),
    "job": ("What is {e}'s job? Answer with the job title only.",
            "What does {e} do for a living? Reply with the job only.",
            "Which profession does {e} have? Answer with one word.",
            "{e} works as what? Give the job title only."),
    "colour": ("What is {e}'s favourite colour? Answer with the colour only.",
               "Which colour does {e} like best? Reply with one word.",
               "Name the favourite colour of {e}. Answer with the colour only.",
               "{e} likes which colour best? Give the colour only."),
    "pet": ("What pet does {e} keep? Answer with the animal only.",
            "Which animal is {e}'s pet? Reply with one word.",
            "What kind of pet does {e} have? Answer with the animal only.",
            "{e} owns which pet? Give the animal only."),
}
ALL_VALUES = [v for vs in VALUES.values() for v in vs]

_ONSETS = ("b", "br", "c", "d", "dr", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s",
           "st", "t", "th", "v", "w", "z")
_NUCLEI = ("a", "e", "i", "o", "u", "ae", "ei", "ou")
_CODAS = ("", "", "n", "r", "l", "s", "th", "m", "x")


def _syllables(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS)
                   for _ in range(n)).capitalize()


def _build() -> tuple[list[str], dict[tuple[str, str], str]]:
    rng = random.Random(_SECRET)
    names: dict[str, None] = {}
    while len(names) < MAX_ENTITIES:
        name = f"{_syllables(rng, 2)} {_syllables(rng, rng.choice((1, 2)))}"
        if len(name) <= 16 and not any(w.casefold() in name.casefold().split()
                                       for w in ALL_VALUES):
            names.setdefault(name, None)
    entities = list(names)
    facts = {(e, a): rng.choice(VALUES[a]) for e in entities for a in ATTRIBUTES}
    return entities, facts


ENTITIES, FACTS = _build()


def question(entity: str, attribute: str, template: int) -> str:
    return TEMPLATES[attribute][template].format(e=entity)


class KnowledgeParams(PluginParams):
    """The parameters of the ``knowledge`` family."""

    entities: int = Field(default=60, description=f"fictional people in the knowledge base, "
                          f"1..{MAX_ENTITIES}")
    reference_model: str = Field(default=REFERENCE_MODEL, description="the reference teacher "
                                 "that serves it (see `extractbench list models`)")


class Knowledge:
    """Questions about the first ``entities`` people of the fixed knowledge base (1-200)."""

    name = "knowledge"
    reasoning_suffix: str | None = None

    def __init__(self, seed: int, sizes: dict[str, int], entities: int = 60,
                 reference_model: str = REFERENCE_MODEL) -> None:
        if not isinstance(entities, int) or not 1 <= entities <= MAX_ENTITIES:
            raise ValueError(f"entities must be an integer from 1 to {MAX_ENTITIES} "
                             f"(got {entities!r})")
        self.entities = entities
        self.reference_model = reference_model
        self.max_answer_tokens = self.reasoning_max_tokens = max(map(len, ALL_VALUES)) + 4
        need = {s: int(sizes.get(s, 0)) for s in ("heldout", "benign", "attack_pool")}
        rng = random.Random(seed)
        facts = [(e, a) for e in ENTITIES[:entities] for a in ATTRIBUTES]
        rng.shuffle(facts)
        n_templates = len(TEMPLATES[ATTRIBUTES[0]])
        order = {f: rng.sample(range(n_templates), n_templates) for f in facts}
        # held-out and benign questions: round-robin over facts, at most RESERVED phrasings each
        reserved = [(f, order[f][k]) for k in range(RESERVED) for f in facts]
        n_res = need["heldout"] + need["benign"]
        if n_res > len(reserved):
            raise ValueError(
                f"heldout + benign ask for {n_res} questions but entities={entities} allows "
                f"only {len(reserved)} ({RESERVED} phrasings x {len(facts)} facts); lower "
                "heldout/benign or raise entities"
            )
        taken = set(reserved[:n_res])
        pool = [(f, t) for f in facts for t in order[f] if (f, t) not in taken]
        rng.shuffle(pool)
        if need["attack_pool"] > len(pool):
            raise ValueError(
                f"attack_pool asks for {need['attack_pool']} questions but entities={entities} "
                f"leaves only {len(pool)}; lower attack_pool or raise entities"
            )
        chunks = {
            "heldout": reserved[: need["heldout"]],
            "benign": reserved[need["heldout"] : n_res],
            "attack_pool": pool[: need["attack_pool"]],
        }
        self._splits = {s: [self._item(f, t) for f, t in c] for s, c in chunks.items()}

    @staticmethod
    def _item(fact: tuple[str, str], template: int) -> TaskItem:
        entity, attribute = fact
        return TaskItem(key=f"{entity}|{attribute}|{template}",
                        prompt=question(entity, attribute, template), answer=FACTS[fact])

    def split(self, name: SplitName) -> list[TaskItem]:
        return list(self._splits[name])

    def extract(self, text: str) -> str | None:
        """The known value mentioned last (after any reasoning block), else the cleaned
        answer text."""
        rest = final_part(text)
        if rest is None:
            return None
        found = last_label(rest, ALL_VALUES)
        if found is not None:
            return found
        return clean(rest) or None

    def score(self, prediction: str | None, item: TaskItem) -> float:
        return float(prediction is not None and prediction.casefold() == item.answer.casefold())


@TASKS.register("knowledge", params=KnowledgeParams)
def make_knowledge(seed: int, sizes: dict[str, int], **params: object) -> Knowledge:
    """Private knowledge base of fictional people, asked in several phrasings."""
    known = set(KnowledgeParams.model_fields)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown knowledge parameter {unknown[0]!r} "
                         f"(known: {', '.join(sorted(known))})")
    return Knowledge(seed, sizes, **params)  # type: ignore[arg-type]
