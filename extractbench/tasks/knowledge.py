"""Private knowledge: questions about a generated knowledge base of fictional people (home
town, job, favourite colour, pet), each fact asked in four phrasings.

The knowledge base is fixed (the teacher memorised it); the task seed only decides which
questions go to which split.

**What is held out: a phrasing of a fact, not the fact.** Facts are random, so nothing
generalises from one person to another: a student can know a fact only if the attack asked
about it. Holding out whole facts or whole people would leave nothing to transfer (a student
could only guess, whatever the endpoint did), so transfer would measure nothing. Instead the
content unit is the *question*: (person, attribute, phrasing), key ``"person|attribute|i"``
with ``i`` the phrasing's index in :data:`TEMPLATES`. A held-out question is never sent in any
wording (its question sentence, under any greeting, answer-format instruction, reasoning
request or the paraphrases of ``stealth``), while the fact it asks about is askable in the
other three phrasings. So a held-out score measures whether the student learned the *fact*
from the answers it harvested, not whether it memorised a string.

Splits (see :mod:`extractbench.tasks.splits`) take held-out and benign from the low end of an
order in which every fact's four phrasings are spread over the four quarters (a seeded
permutation per fact), and the pool from the high end. So held-out and benign take one
phrasing of every fact before a second of any, and the pool takes one phrasing of every fact
before a second of any: with ``attack_pool`` at least the number of facts (``4 x entities``),
every held-out fact is in the pool in another phrasing.
"""

from __future__ import annotations

import random
import re

from pydantic import Field

from extractbench.registry import PluginParams
from extractbench.tasks.answers import clean, final_part, last_label
from extractbench.tasks.base import TASKS, SplitName, TaskItem
from extractbench.tasks.splits import assign, position
from extractbench.tasks.wording import normalise, sentences

REFERENCE_MODEL = "knowledge-ref"
MAX_ENTITIES = 200  # people in the knowledge base the reference teacher memorised
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


def fact_key(entity: str, attribute: str, template: int) -> str:
    """The content key of a question: ``"person|attribute|phrasing index"``."""
    return f"{entity}|{attribute}|{template}"


_PLACE = "{e}"
FRAMES: dict[str, tuple[str, int]] = {
    normalise(sentences(t)[0]): (attribute, i)
    for attribute, ts in TEMPLATES.items() for i, t in enumerate(ts)
}
"""Each phrasing's question (its first sentence, ``{e}`` for the person) as
:func:`~extractbench.tasks.wording.normalise` reads it -> (attribute, phrasing index)."""
_ENTITY = re.compile(r"(?<!\w)(" + "|".join(re.escape(e) for e in
                                            sorted(ENTITIES, key=len, reverse=True))
                     + r")(?!\w)", re.IGNORECASE)
_BY_NORMALISED = {normalise(e): e for e in ENTITIES}
_NAMES = "|".join(re.escape(n) for n in sorted(_BY_NORMALISED, key=len, reverse=True))
_QUESTIONS = [
    (re.compile(r"(?<!\w)" + f"(?P<e>{_NAMES})".join(re.escape(p) for p in frame.split(_PLACE))
                + r"(?!\w)"), attribute, i)
    for frame, (attribute, i) in FRAMES.items()
]


def question_keys(prompt: str) -> tuple[str, ...]:
    """The questions (content keys) ``prompt`` asks: every phrasing's question, with a person
    of the knowledge base in it, found anywhere in the prompt as
    :func:`~extractbench.tasks.wording.normalise` reads it (through greetings, paraphrases,
    instructions and text around it), in order of appearance."""
    if _ENTITY.search(prompt) is None:
        return ()
    text = normalise(prompt)
    found = [(m.start(), fact_key(_BY_NORMALISED[m.group("e")], attribute, i))
             for pattern, attribute, i in _QUESTIONS for m in pattern.finditer(text)]
    return tuple(dict.fromkeys(key for _, key in sorted(found)))


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
        self._seed = seed
        n_templates = len(TEMPLATES[ATTRIBUTES[0]])
        questions = {fact_key(e, a, t): [(e, a, t)] for e in ENTITIES[:entities]
                     for a in ATTRIBUTES for t in range(n_templates)}
        chunks = assign(self.name, seed, questions, sizes, f"entities={entities}",
                        order=self._order)
        self._splits = {s: [self._item(*q) for _, q in c] for s, c in chunks.items()}

    def _order(self, key: str) -> float:
        """The question's place: its phrasing's rank in the fact's seeded permutation picks a
        quarter of [0, 1), the fact's hash its place in the quarter (every fact's phrasings
        spread over the four quarters)."""
        entity, attribute, template = key.split("|")
        fact = f"{entity}|{attribute}"
        n = len(TEMPLATES[attribute])
        ranks = sorted(range(n), key=lambda i: position(self.name, self._seed, f"{fact}|{i}",
                                                       "phrasing"))
        return (ranks.index(int(template)) + position(self.name, self._seed, fact)) / n

    @staticmethod
    def _item(entity: str, attribute: str, template: int) -> TaskItem:
        return TaskItem(key=fact_key(entity, attribute, template),
                        prompt=question(entity, attribute, template),
                        answer=FACTS[(entity, attribute)])

    def content_keys(self, prompt: str) -> tuple[str, ...]:
        """The questions ``prompt`` asks (see :func:`question_keys`)."""
        return question_keys(prompt)

    def content_key(self, prompt: str) -> str | None:
        keys = question_keys(prompt)
        return keys[0] if keys else None

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
