"""The live preview of a rule being written: what it would have matched lately.

The rule is run over the last ``WINDOW`` of stored history (``agent.backtest``)
with its work bounded by ``LIMIT`` (the newest stored items and changes), so a
preview answers quickly however large the store grows; it says when it looked
at only part of it. It gives the count, the count per week (for the chart) and
the newest ``NEWEST`` matches, each with its stored item's id for its page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from babel.dates import format_date
from sqlmodel import Session, select

from agent import i18n
from agent.backtest import backtest
from agent.models import StoredItem
from agent.rules import Node

#: How far back a preview looks.
WINDOW = timedelta(days=90)
#: How many of the newest matches it lists.
NEWEST = 5
#: At most this many stored items, and as many change events, are read: about half
#: a second of work on a small server.
LIMIT = 2000


@dataclass(frozen=True)
class Match:
    """One of the newest matches, as the preview lists it."""

    #: The stored item's id (its page is ``/items/<id>``), if it is still stored.
    item_id: int | None
    title: str
    kind: str
    event: str
    publisher: str | None
    at: datetime


@dataclass(frozen=True)
class Preview:
    """A rule's matches over the window."""

    count: int
    #: (week's first day, as the reader writes it; matches), oldest first.
    weeks: list[tuple[str, int]]
    newest: list[Match]
    #: Only the newest part of the store was read.
    truncated: bool


def preview(session: Session, node: Node, *, now: datetime, language: str) -> Preview:
    """Run ``node`` over the last ``WINDOW`` up to ``now``."""
    found = backtest(session, node, since=now - WINDOW, until=now, limit=LIMIT)
    locale = i18n.LOCALES[i18n.language_of(language)]
    weeks = [(format_date(week, "d MMM", locale=locale), n) for week, n in found.per_week()]
    newest = [
        Match(
            item_id=_item_id(session, hit.event.item.source, hit.event.item.key),
            title=hit.event.item.title,
            kind=hit.event.item.kind.value,
            event=hit.event.type.value,
            publisher=hit.event.item.publisher,
            at=hit.at,
        )
        for hit in found.hits[:NEWEST]
    ]
    return Preview(len(found.hits), weeks, newest, found.truncated)


def _item_id(session: Session, source: str, key: str) -> int | None:
    query = select(StoredItem.id).where(StoredItem.source == source, StoredItem.key == key)
    return session.exec(query).first()
