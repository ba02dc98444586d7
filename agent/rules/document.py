"""An event analysed once, for every rule that looks at it.

``Doc`` holds, per text field, the words and the keys each is indexed under;
the normalised names and codes field clauses compare with; and ``anchors``,
the set the engine looks up in its postings. Building it is the fixed cost
of matching an item, so it is built once per event, whatever the number of rules.
"""

from __future__ import annotations

import bisect
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from agent.models import Event
from agent.rules.analysis import code_key, forms, name_key, words

#: Text fields searched by plain terms, in the order reasons prefer them.
TEXT_FIELDS = ("title", "description", "publisher", "publishing_unit", "tags")
_EDGE_QUOTES = "'\"\u05f3\u05f4\u2018\u2019\u201c\u201d"


@lru_cache(maxsize=65_536)  # the same kinds, publishers and codes, rule after rule
def field_anchor(field: str, value: str) -> str:
    """Return the posting key of a field value (text keys never contain control characters)."""
    return sys.intern(f"\x01{field}\x01{value}")


class Doc:
    """The analysed event: text positions, normalised attributes and anchors."""

    __slots__ = (
        "anchors",
        "codes",
        "event",
        "first",
        "now",
        "publisher",
        "sorted_keys",
        "status",
        "tags",
        "text",
        "unit",
    )

    def __init__(self, event: Event, now: datetime) -> None:
        item = event.item
        self.event = event
        self.now = now
        texts = {
            "title": item.title,
            "description": item.description,
            "publisher": item.publisher or "",
            "publishing_unit": item.publishing_unit or "",
            "tags": " ; ".join(item.tags),
        }
        #: field → list of (surface word, its index keys), in text order.
        self.text = {name: _analyse(texts[name]) for name in TEXT_FIELDS}
        #: field → key → position of the first word indexed under it.
        self.first = {name: _first_positions(self.text[name]) for name in TEXT_FIELDS}
        self.sorted_keys: dict[str, list[str]] = {}
        self.publisher = name_key(item.publisher or "")
        self.unit = name_key(item.publishing_unit or "")
        self.status = name_key(item.status or "")
        self.tags = frozenset(name_key(tag) for tag in item.tags)
        self.codes = tuple(filter(None, map(code_key, item.budget_codes)))
        self.anchors = self._anchors()

    def locate(self, key: str, field: str | None) -> tuple[str, str] | None:
        """Return (field, word) where ``key`` is indexed, ``field`` or any text field."""
        if key not in self.anchors:
            return None
        for name in (field,) if field else TEXT_FIELDS:
            at = self.first[name].get(key)
            if at is not None:
                return name, self.text[name][at][0]
        return None

    def locate_prefix(self, prefix: str, field: str | None) -> tuple[str, str] | None:
        """Return (field, word) of the first indexed key starting with ``prefix``."""
        for name in (field,) if field else TEXT_FIELDS:
            ordered = self.sorted_keys.get(name)
            if ordered is None:
                ordered = self.sorted_keys[name] = sorted(self.first[name])
            at = bisect.bisect_left(ordered, prefix)
            if at < len(ordered) and ordered[at].startswith(prefix):
                return name, self.text[name][self.first[name][ordered[at]]][0]
        return None

    def locate_phrase(self, keys: tuple[str, ...], field: str | None) -> tuple[str, str] | None:
        """Return (field, words) where ``keys`` occur on consecutive words."""
        anchors = self.anchors
        if not all(k in anchors for k in keys):
            return None
        size = len(keys)
        for name in (field,) if field else TEXT_FIELDS:
            tokens = self.text[name]
            first = self.first[name].get(keys[0])
            if first is None:
                continue
            for start in range(first, len(tokens) - size + 1):
                if all(keys[i] in tokens[start + i][1] for i in range(size)):
                    return name, " ".join(word for word, _ in tokens[start : start + size])
        return None

    def _anchors(self) -> set[str]:
        item = self.event.item
        found = set[str]().union(*self.first.values())
        values = [
            ("kind", item.kind.value),
            ("event", self.event.type.value),
            ("source", item.source.casefold()),
            ("follow", item.key),
            ("follow", f"{item.source}:{item.key}"),
            ("status", self.status),
            *(("tag", tag) for tag in self.tags),
            *(("publisher", p) for p in _word_prefixes(self.publisher)),
            *(("unit", p) for p in _word_prefixes(self.unit)),
            *(("code", code[:n]) for code in self.codes for n in range(2, len(code) + 1)),
        ]
        found.update(field_anchor(name, value) for name, value in values)
        return found  # not copied into a frozenset: that alone cost 7 % of building a Doc


def _analyse(text: str) -> list[tuple[str, tuple[str, ...]]]:
    return [found for found in map(_word, words(text)) if found[1]]


@lru_cache(maxsize=262_144)
def _word(word: str) -> tuple[str, tuple[str, ...]]:
    return word.strip(_EDGE_QUOTES) or word, forms(word)


def _first_positions(tokens: list[tuple[str, tuple[str, ...]]]) -> dict[str, int]:
    # Built backwards so that the earliest position of a key is the one kept;
    # one comprehension is several times faster than a loop of setdefault().
    return {key: at for at in range(len(tokens) - 1, -1, -1) for key in tokens[at][1]}


def _word_prefixes(name: str) -> list[str]:
    parts = name.split(" ")
    return [" ".join(parts[:n]) for n in range(1, len(parts) + 1)] if name else []


def document_frequency(events: Iterable[Event], now: datetime) -> dict[str, int]:
    """Count in how many events each index key occurs: what ``Engine`` anchors rules by."""
    counts: Counter[str] = Counter()
    for event in events:
        counts.update(Doc(event, now).anchors)
    return dict(counts)
