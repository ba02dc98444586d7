"""Browse and search stored items with a rule, newest first, a page at a time.

A search is a subscription rule (``agent.web.forms.read_rule``) evaluated on
each stored item as if it had just been published (a ``new`` event at now),
so the page lists what a subscription with the same rule is alerted about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session, col, select

from agent.models import Event, EventType, Item, StoredItem
from agent.rules import Node, evaluate

#: Results per page.
PAGE_SIZE = 20
#: A search reads at most this many of the last published items, and as many of
#: the last seen with no publication date (``_recent``): each is validated and the
#: rule evaluated on it in Python (about 0.2 ms an item), so the work, and what an
#: anonymous visitor can make the server do, stays bounded however big the store grows.
SEARCH_LIMIT = 1500
#: Pages past this are not served (a page number is a visitor's input).
MAX_PAGE = 2 * SEARCH_LIMIT // PAGE_SIZE + 1


@dataclass(frozen=True)
class Found:
    """One stored item in a list of results."""

    id: int
    item: Item
    first_seen_at: datetime

    @property
    def when(self) -> datetime:
        """When it was published, else when the agent first saw it: the list's order."""
        return self.item.published_at or self.first_seen_at


@dataclass(frozen=True)
class Results:
    """One page of results and what the pager needs."""

    rows: list[Found]
    total: int
    page: int
    pages: int
    #: Whether the search stopped at ``SEARCH_LIMIT`` items (older ones were not read).
    bounded: bool


def search(
    session: Session,
    node: Node | None,
    now: datetime,
    *,
    page: int = 1,
    size: int = PAGE_SIZE,
    limit: int = SEARCH_LIMIT,
) -> Results:
    """The items ``node`` matches (every item when ``None``), newest first; page ``page``."""
    rows, bounded = _recent(session, limit)
    matched = [row for row in rows if node is None or _matches(node, row.item, now)]
    matched.sort(key=lambda row: (row.when, row.id), reverse=True)
    pages = max(1, -(-len(matched) // size))
    page = min(max(page, 1), pages)
    start = (page - 1) * size
    return Results(matched[start : start + size], len(matched), page, pages, bounded)


def page_number(given: str | None) -> int:
    """The ``page=`` parameter as a number; anything else is the first page."""
    if given is None or not given.isascii() or not given.isdecimal():
        return 1
    # A long number is past the last page anyway (and int() refuses 4,300 digits).
    return MAX_PAGE if len(given) > 6 else min(max(int(given), 1), MAX_PAGE)


def _recent(session: Session, limit: int) -> tuple[list[Found], bool]:
    """The newest items: the ``limit`` last published, and of those with no
    publication date, the ``limit`` the agent saw last.

    The list's order is the publication date, else the day the agent first saw
    an item, so its first ``limit`` are all among these. (A first poll sees a
    whole register at once: the day it was seen says nothing there.) Whether
    either had more is read from one row beyond ``limit``.
    """
    published = sa.type_coerce(StoredItem.data, sa.JSON)["published_at"].as_string()
    # JSON dates are UTC ISO 8601 (``Item`` makes them UTC), so text order is time order.
    by_date = (
        select(StoredItem)
        .where(published.is_not(None))
        .order_by(published.desc(), col(StoredItem.id).desc())
        .limit(limit + 1)
    )
    by_sight = (
        select(StoredItem)
        .where(published.is_(None))
        .order_by(col(StoredItem.first_seen_at).desc(), col(StoredItem.id).desc())
        .limit(limit + 1)
    )
    dated, seen = session.exec(by_date).all(), session.exec(by_sight).all()
    rows = {row.id: row for row in [*dated[:limit], *seen[:limit]]}
    found = [row for row in map(_found, rows.values()) if row is not None]
    return found, len(dated) > limit or len(seen) > limit


def _found(row: StoredItem) -> Found | None:
    if row.id is None:
        return None
    try:
        item = row.to_item()
    except ValidationError:  # written by an older version with other rules: leave it out
        return None
    return Found(row.id, item, row.first_seen_at)


def _matches(node: Node, item: Item, now: datetime) -> bool:
    event = Event(type=EventType.NEW, item=item, dedup_key="new")
    return evaluate(node, event, now) is not None
