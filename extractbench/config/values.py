"""The value rules of a scenario file, as pydantic types: names that are safe in file names and
cell ids, text without control characters, finite numbers, and plugin parameters that are
plain data (what JSON can hold).

Names (of endpoints, tasks, attacks, students, the scenario itself) become parts of file names
and cell ids such as ``reference/arithmetic/random-pool/q30/tinylm/s0``, and a cell's files are
named by its id with ``__`` for ``/``. So a name is 1-40 letters, digits, ``.``, ``_`` or
``-``, starts and ends with a letter or digit, and has no ``..`` (a path step) or ``__`` (two
cells would share a file): every file name a run writes stays under 255 bytes and belongs to
one cell.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

__all__ = ["NAME_RULE", "Coordinate", "Line", "Name", "PlainParams", "Text", "escape",
           "first_unsafe_char", "name_problem", "params_problem"]

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,38}[A-Za-z0-9])?")
NAME_RULE = ("1-40 letters, digits, '.', '_' or '-', starting and ending with a letter or "
             "digit, without '..' or '__'")

# bidirectional-text controls: they make a terminal show text in another order than it is
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def first_unsafe_char(text: str, allow: str = "") -> str | None:
    """The first control or bidi character of ``text`` not in ``allow``, or ``None``."""
    for ch in text:
        if ch in allow:
            continue
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs"):
            return ch
    return None


def escape(text: str) -> str:
    """``text`` with control, bidi, format and line-break characters written as ``\\uXXXX``,
    so a message stays one line and shows what is there."""
    out = []
    for ch in text:
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a name (``None`` when it can)."""
    if _NAME.fullmatch(value) and ".." not in value and "__" not in value:
        return None
    return (f"{escape(repr(value))} cannot be a name (it becomes part of file names and cell "
            f"ids: use {NAME_RULE})")


def _name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _text(allow: str) -> AfterValidator:
    def check(value: str) -> str:
        ch = first_unsafe_char(value, allow)
        if ch is not None:
            raise ValueError(f"contains the control character U+{ord(ch):04X} (remove it)")
        return value

    return AfterValidator(check)


def _digits(value: int) -> str:
    return str(value) if abs(value) < 10**30 else f"a {value.bit_length()}-bit number"


def _number(value: float) -> str:
    return {"inf": ".inf", "-inf": "-.inf"}.get(str(value), ".nan")


def params_problem(value: Any, path: str = "") -> str | None:
    """The first part of ``value`` that is not plain, finite data (strings without control
    characters, whole numbers that fit in 64 bits, finite numbers, true/false, null, lists,
    mappings with string keys), as ``path: problem``; ``None`` when it is all plain."""
    here = path or "(value)"
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return (None if -(2**63) <= value < 2**63
                else f"{here}: {_digits(value)} does not fit in 64 bits (use a smaller number)")
    if isinstance(value, float):
        return (None if math.isfinite(value)
                else f"{here}: {_number(value)} is not a finite number (use a finite number)")
    if isinstance(value, str):
        ch = first_unsafe_char(value, "\t\n")
        return (None if ch is None
                else f"{here}: contains the control character U+{ord(ch):04X} (remove it)")
    if isinstance(value, list):
        for i, item in enumerate(value):
            problem = params_problem(item, f"{path}.{i}" if path else str(i))
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{here}: the key {key!r} is not a string (quote it)"
            problem = params_problem(item, f"{path}.{key}" if path else key)
            if problem:
                return problem
        return None
    return (f"{here}: a {type(value).__name__} is not allowed here (write a string, number, "
            "true/false, list or mapping; quote a date to make it a string)")


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    problem = params_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _coordinate(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a name or a number, got {value!r} (write a name, e.g. "
                         "q300, or a seed)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{_number(value)} is not a finite number (use a finite number)")
    return value


Name = Annotated[str, AfterValidator(_name), WithJsonSchema(
    {"type": "string", "pattern": f"^{_NAME.pattern}$", "description": f"a name: {NAME_RULE}"})]
"""A name that becomes part of file names and cell ids (see the module docstring)."""
Text = Annotated[str, _text("\t\n\r")]
"""Free text: any characters but control and bidi ones (line breaks and tabs are fine)."""
Line = Annotated[str, _text("")]
"""One line of text without control or bidi characters (a URL, a model name)."""
PlainParams = Annotated[dict[str, Any], AfterValidator(_plain)]
"""A plugin's parameters: plain, finite data (the plugin's own model checks names and types)."""
Coordinate = Annotated[str | int | float, BeforeValidator(_coordinate)]
"""A gate's ``where:`` value: a name, or a number (a seed)."""
