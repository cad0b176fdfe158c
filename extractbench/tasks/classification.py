"""Classification at scale: route short customer-support tickets to one of a fixed set of
teams by a hidden rule.

The rule (fixed; the teacher learned it): every product in the catalogue belongs to one team,
secretly, and a ticket goes to its product's team whatever the complaint says ("Can I get a
refund for my Quillex?" may belong to shipping). Tickets are generated from openers, complaint
templates and products.

**Content.** A ticket's content is its complaint about its product; the opener ("Hi, ",
"Help! ", ...) and the instruction around the ticket are wording. The content key is the
complaint with the product filled in, as written in :data:`COMPLAINTS` ("can I get a refund
for my Quillex?"); the six openers of one complaint are its variants (held-out and benign take
one, the attack pool all six). Held-out complaints are never sent, but the products they name
are in the pool in other complaints, so the hidden rule can be learned.
:meth:`Classification.content_keys` finds every complaint about a catalogue product in a prompt,
whatever its case, spacing, opener or the words around it.
"""

from __future__ import annotations

import random
import re

from pydantic import Field

from extractbench.registry import PluginParams
from extractbench.tasks.answers import final_part, last_label
from extractbench.tasks.base import TASKS, SplitName, TaskItem
from extractbench.tasks.splits import assign, pick

REFERENCE_MODEL = "classify-ref"
LABELS = ("billing", "shipping", "returns", "technical", "accounts", "sales")
ALIASES = {"bill": "billing", "tech": "technical", "account": "accounts", "return": "returns",
           "sale": "sales", "ship": "shipping"}
MAX_PRODUCTS = 240  # products in the catalogue the reference teacher learned
_SECRET = "extractbench-ticket-routing-v1"

PROMPTS = (
    "Which team should handle this ticket: billing, shipping, returns, technical, accounts or "
    "sales? Answer with the team only.\nTicket: {t}",
    "Route this support ticket to one team (billing, shipping, returns, technical, accounts, "
    "sales). Reply with the team name only.\nTicket: {t}",
)
OPENERS = ("", "Hi, ", "Hello, ", "Help! ", "Quick question: ", "Hey team, ")
COMPLAINTS = (
    "my {p} stopped working.", "my {p} arrived broken.", "can I get a refund for my {p}?",
    "the {p} I ordered never came.", "my {p} keeps restarting.", "I was charged twice for a {p}.",
    "how do I reset my {p}?", "the {p} is missing a part.", "I want to return my {p}.",
    "is the {p} on sale?", "my {p} login fails.", "the {p} makes a loud noise.",
    "where is my {p}?", "my {p} will not turn on.", "can I upgrade my {p}?",
    "the {p} screen is cracked.", "who can fix my {p}?", "my {p} battery drains fast.",
    "I lost the manual for my {p}.", "does the {p} come in blue?",
)

_ONSETS = ("b", "bl", "c", "cr", "d", "f", "fl", "g", "gr", "k", "l", "m", "n", "p", "pl",
           "qu", "r", "s", "sn", "t", "tr", "v", "w", "z")
_NUCLEI = ("a", "e", "i", "o", "u", "y")
_CODAS = ("", "x", "n", "r", "l", "s", "m", "k", "t")


def _build() -> dict[str, str]:
    rng = random.Random(_SECRET)
    names: dict[str, None] = {}
    while len(names) < MAX_PRODUCTS:
        name = "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS)
                       for _ in range(rng.choice((2, 3)))).capitalize()
        if 4 <= len(name) <= 10 and last_label(name, [*LABELS, *ALIASES]) is None:
            names.setdefault(name, None)
    teams = [LABELS[i % len(LABELS)] for i in range(MAX_PRODUCTS)]
    rng.shuffle(teams)
    return dict(zip(names, teams, strict=True))


PRODUCT_TEAM = _build()
PRODUCTS = list(PRODUCT_TEAM)


def _complaint_pattern(i: int, complaint: str) -> str:
    head, tail = complaint.rstrip(".?!").split("{p}")
    before, after = ([re.escape(w) for w in part.split()] for part in (head, tail))
    return (r"(?<!\w)" + r"\s+".join([*before, rf"(?P<p{i}>[A-Za-z]+)", *after])
            + r"(?!\w)")


_COMPLAINT = re.compile("|".join(_complaint_pattern(i, c) for i, c in enumerate(COMPLAINTS)),
                        re.IGNORECASE)
_PRODUCT = {p.casefold(): p for p in PRODUCTS}


def complaint_key(complaint: str, product: str) -> str:
    """The content key of a ticket: its complaint with the product, without the opener."""
    return complaint.format(p=product)


def ticket_keys(prompt: str) -> tuple[str, ...]:
    """The tickets (content keys) ``prompt`` contains: every complaint about a catalogue
    product, in order."""
    keys: list[str] = []
    for m in _COMPLAINT.finditer(prompt):
        assert m.lastgroup is not None
        product = _PRODUCT.get(m.group(m.lastgroup).casefold())
        if product is not None:
            keys.append(complaint_key(COMPLAINTS[int(m.lastgroup[1:])], product))
    return tuple(dict.fromkeys(keys))


def ticket(opener: str, complaint: str, product: str) -> str:
    body = complaint.format(p=product)
    if not opener or opener.endswith("! "):
        body = body[0].upper() + body[1:]
    return opener + body


class ClassificationParams(PluginParams):
    """The parameters of the ``classification`` family."""

    products: int = Field(default=120, description=f"products in the catalogue, "
                          f"{len(LABELS)}..{MAX_PRODUCTS}")
    reference_model: str = Field(default=REFERENCE_MODEL, description="the reference teacher "
                                 "that serves it (see `extractbench list models`)")


class Classification:
    """Ticket routing over the first ``products`` products of the catalogue (6-240)."""

    name = "classification"
    reasoning_suffix: str | None = None
    labels = LABELS
    customer_wording = True
    """The teacher routes a ticket whatever greeting opens the request (measured on the
    benign split: the same score under each of ``benign.CUSTOMER_LEADS``)."""

    def __init__(self, seed: int, sizes: dict[str, int], products: int = 120,
                 reference_model: str = REFERENCE_MODEL) -> None:
        if not isinstance(products, int) or not len(LABELS) <= products <= MAX_PRODUCTS:
            raise ValueError(f"products must be an integer from {len(LABELS)} to "
                             f"{MAX_PRODUCTS} (got {products!r})")
        self.products = products
        self.reference_model = reference_model
        self.max_answer_tokens = self.reasoning_max_tokens = max(map(len, LABELS)) + 4
        self._seed = seed
        tickets = {complaint_key(c, p): [(o, c, p) for o in OPENERS]
                   for p in PRODUCTS[:products] for c in COMPLAINTS}
        chunks = assign(self.name, seed, tickets, sizes, f"products={products}")
        self._splits = {s: [self._item(t) for _, t in c] for s, c in chunks.items()}

    def _item(self, parts: tuple[str, str, str]) -> TaskItem:
        text = ticket(*parts)
        prompt = PROMPTS[pick(self.name, self._seed, text, len(PROMPTS), "prompt")]
        return TaskItem(key=complaint_key(parts[1], parts[2]), prompt=prompt.format(t=text),
                        answer=PRODUCT_TEAM[parts[2]])

    def content_keys(self, prompt: str) -> tuple[str, ...]:
        """The tickets ``prompt`` contains (see :func:`ticket_keys`)."""
        return ticket_keys(prompt)

    def content_key(self, prompt: str) -> str | None:
        keys = ticket_keys(prompt)
        return keys[0] if keys else None

    def split(self, name: SplitName) -> list[TaskItem]:
        return list(self._splits[name])

    def extract(self, text: str) -> str | None:
        """The team named last (after any reasoning block), aliases such as "tech" mapped."""
        rest = final_part(text)
        if rest is None:
            return None
        found = last_label(rest, [*LABELS, *ALIASES])
        return None if found is None else ALIASES.get(found, found)

    def score(self, prediction: str | None, item: TaskItem) -> float:
        return float(prediction == item.answer)


@TASKS.register("classification", params=ClassificationParams)
def make_classification(seed: int, sizes: dict[str, int], **params: object) -> Classification:
    """Support-ticket routing to 6 teams by a hidden product rule; param: products."""
    known = set(ClassificationParams.model_fields)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown classification parameter {unknown[0]!r} "
                         f"(known: {', '.join(sorted(known))})")
    return Classification(seed, sizes, **params)  # type: ignore[arg-type]
