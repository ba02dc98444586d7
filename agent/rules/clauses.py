"""Build rule nodes from user values; shared by the query parser and ``RuleSpec``.

Every builder raises ``RuleError`` with a message naming the bad value; the
parser adds the position, ``RuleSpec`` the field name. One set of builders
is why a query string and the equivalent form give equal trees.
"""

from __future__ import annotations

import re
import sys

from agent.errors import RuleError
from agent.models import EventType, Kind
from agent.rules.analysis import code_key, fold, key, name_key, words
from agent.rules.tree import Node, Phrase, Term

#: Field clauses compared with an item attribute, and their aliases.
VALUE_FIELDS = {
    "kind": "kind",
    "publisher": "publisher",
    "unit": "unit",
    "publishing_unit": "unit",
    "code": "code",
    "status": "status",
    "tag": "tag",
    "source": "source",
    "event": "event",
    "follow": "follow",
}
#: Fields that restrict a word or phrase to one text field.
TEXT_FIELDS = ("title", "description")
#: Numeric fields and the change clauses.
NUMBER_FIELDS = ("amount", "days_left", "closing_within", "change", "change%")

#: Hebrew and Arabic names people use for kinds (compared as ``name_key``).
_KIND_ALIASES = {
    "מכרז": Kind.TENDER,
    "מכרזים": Kind.TENDER,
    "פטור": Kind.EXEMPTION,
    "פטור ממכרז": Kind.EXEMPTION,
    "קול קורא": Kind.CALL_FOR_BIDS,
    "קולות קוראים": Kind.CALL_FOR_BIDS,
    "מבחני תמיכה": Kind.SUPPORT_CRITERIA,
    "שינוי תקציבי": Kind.BUDGET_CHANGE,
    "העברה תקציבית": Kind.BUDGET_CHANGE,
    "התקשרות": Kind.CONTRACT,
    "مناقصة": Kind.TENDER,
}
_ALIASES = {name_key(alias): kind.value for alias, kind in _KIND_ALIASES.items()}
_NUMBER = re.compile(r"₪?\s*(\d[\d,]*(?:\.\d+)?)\s*([kKmM]?)\s*₪?")
_SCALE = {"": 1.0, "k": 1e3, "m": 1e6}


def text_node(text: str, field: str | None = None, *, prefix: bool = False) -> Node:
    """Return a Term (one word) or a Phrase (several) for ``text`` as the user typed it."""
    if prefix or "*" in text:
        return _prefix(text, field)
    found = [(word, key(word)) for word in words(text)]
    found = [(word, k) for word, k in found if k]
    if not found:
        raise RuleError(f"nothing to search for in {text!r}")
    if len(found) == 1:
        return Term(sys.intern(found[0][0]), found[0][1], field)
    return Phrase(tuple(w for w, _ in found), tuple(k for _, k in found), field)


def _prefix(text: str, field: str | None) -> Node:
    if text.startswith("*") or not text:
        raise RuleError("a wildcard cannot start a word (no leading wildcards)")
    if "*" in text:
        raise RuleError("a wildcard may only end a word")
    found = words(text)
    prefix = fold(found[0]) if len(found) == 1 else ""
    if sum(char.isalpha() for char in prefix) < 3:
        raise RuleError(f"{text}*: a prefix needs at least 3 letters before the *")
    return Term(sys.intern(text), prefix, field, prefix=True)


def field_values(field: str, values: list[str]) -> tuple[str, ...]:
    """Return the comparison keys of ``values`` for the value field ``field``."""
    if not values:
        raise RuleError(f"{field}: give at least one value")
    return tuple(sys.intern(_value_key(field, value)) for value in values)


def _value_key(field: str, value: str) -> str:
    if field == "kind":
        return _kind(value)
    if field == "event":
        if value not in EventType.__members__.values():
            known = ", ".join(EventType)
            raise RuleError(f"unknown event type {value!r}; expected one of {known}")
        return value
    if field == "code":
        found = code_key(value)
        if not found:
            raise RuleError(f"{value!r} is not a budget code (digits and dots, such as 20.40)")
        return found
    if field == "source":
        found = value.strip().casefold()
    elif field == "follow":
        found = value.strip()
    else:
        found = name_key(value)
    if not found:
        raise RuleError(f"{field}: empty value")
    return found


def _kind(value: str) -> str:
    if value in Kind.__members__.values():
        return value
    alias = _ALIASES.get(name_key(value))
    if alias is None:
        raise RuleError(f"unknown kind {value!r}; expected one of {', '.join(Kind)}")
    return alias


def number(text: str) -> float:
    """Parse an amount or a count: ``500000``, ``500,000``, ``₪500k``, ``5M``, ``2.5``."""
    match = _NUMBER.fullmatch(text.strip())
    if match is None:
        raise RuleError(f"{text!r} is not a number")
    return float(match[1].replace(",", "")) * _SCALE[match[2].lower()]
