"""Backtesting: what a rule would have matched over the stored history.

Every stored item is replayed as a ``new`` event at its publication time
(or first-seen time when the source gives none), and every stored change
event at the time it happened. Deadline windows are judged at that moment,
as they would have been live. Plain functions, so the CLI and the web app
share them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlmodel import Session, and_, col, func, or_, select
from sqlmodel.sql.expression import SelectOfScalar

from agent.models import Event, EventType, StoredEvent, StoredItem
from agent.rules import Node, Reason, evaluate

#: Publication times are compared as ISO text: this much wider, so none is missed.
_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class Hit:
    """One historical event a rule matched."""

    at: datetime
    event: Event
    reasons: tuple[Reason, ...]


@dataclass
class Backtest:
    """A rule's matches over a period: weekly counts and the hits, newest first."""

    since: datetime
    until: datetime
    hits: list[Hit] = field(default_factory=list)
    #: Bounded by a ``limit``, it left older stored items or changes out.
    truncated: bool = False

    def per_week(self) -> list[tuple[date, int]]:
        """Matches per week (weeks start on Sunday), oldest first, empty weeks included."""
        counts = Counter(_week(hit.at) for hit in self.hits)
        week, last = _week(self.since), _week(self.until)
        rows = []
        while week <= last:
            rows.append((week, counts.get(week, 0)))
            week += timedelta(days=7)
        return rows

    def per_day(self) -> float:
        """Average matches per day over the period: the expected alert rate."""
        days = max((self.until - self.since).total_seconds() / 86400, 1.0)
        return len(self.hits) / days


@dataclass(frozen=True)
class Diff:
    """What an edit would change: events only the new rule matches, and only the old."""

    added: list[Hit]
    removed: list[Hit]
    kept: int


def backtest(
    session: Session, node: Node, *, since: datetime, until: datetime, limit: int | None = None
) -> Backtest:
    """Run ``node`` over the history between ``since`` and ``until``.

    ``limit`` bounds the work (the web's live preview): only the ``limit``
    newest stored items and change events are read, and ``truncated`` says
    whether older ones were left out.
    """
    result = Backtest(since=since, until=until)
    if limit is not None:
        result.truncated = _more_than(session, limit, since=since, until=until)
    for at, event in history(session, since=since, until=until, limit=limit):
        reasons = evaluate(node, event, at)
        if reasons is not None:
            result.hits.append(Hit(at, event, reasons))
    result.hits.sort(key=lambda hit: hit.at, reverse=True)
    return result


def diff(session: Session, old: Node, new: Node, *, since: datetime, until: datetime) -> Diff:
    """Compare two rules over the same history."""
    before = backtest(session, old, since=since, until=until).hits
    after = backtest(session, new, since=since, until=until).hits
    old_keys = {_identity(hit) for hit in before}
    new_keys = {_identity(hit) for hit in after}
    return Diff(
        added=[hit for hit in after if _identity(hit) not in old_keys],
        removed=[hit for hit in before if _identity(hit) not in new_keys],
        kept=len(old_keys & new_keys),
    )


def history(
    session: Session, *, since: datetime, until: datetime, limit: int | None = None
) -> Iterator[tuple[datetime, Event]]:
    """Yield (when, event) for every stored item and change event in the period.

    With ``limit``, the database picks the items that may be in the period,
    and only the ``limit`` last stored of them and the newest change events are read.
    """
    items = select(StoredItem)
    changes = _changes(since, until)
    if limit is not None:
        items = _items(since, until).order_by(col(StoredItem.id).desc()).limit(limit)
        changes = changes.order_by(col(StoredEvent.created_at).desc()).limit(limit)
    for row in session.exec(items):
        item = row.to_item()
        at = item.published_at or row.first_seen_at
        if since <= at <= until:
            yield at, Event(type=EventType.NEW, item=item, dedup_key="new")
    for stored in session.exec(changes):
        yield stored.created_at, stored.to_event()


def _items(since: datetime, until: datetime) -> SelectOfScalar[StoredItem]:
    """The stored items whose time may be in the period: a few more, never fewer.

    An item's time is its publication date (ISO text in its JSON, compared as
    text with a day's slack for how the zone is written), else when it was first seen.
    """
    published = col(StoredItem.data)["published_at"].as_string()
    low, high = (since - _SLACK).isoformat(), (until + _SLACK).isoformat()
    seen = col(StoredItem.first_seen_at)
    return select(StoredItem).where(
        or_(
            and_(published >= low, published <= high),
            and_(published.is_(None), seen >= since, seen <= until),
        )
    )


def _changes(since: datetime, until: datetime) -> SelectOfScalar[StoredEvent]:
    return select(StoredEvent).where(
        StoredEvent.type != EventType.NEW,
        col(StoredEvent.created_at) >= since,
        col(StoredEvent.created_at) <= until,
    )


def _more_than(session: Session, limit: int, *, since: datetime, until: datetime) -> bool:
    """Whether a ``limit``-bounded history leaves items or change events of the period out."""
    count = select(func.count())
    items = session.exec(count.select_from(_items(since, until).subquery())).one()
    changes = session.exec(count.select_from(_changes(since, until).subquery())).one()
    return items > limit or changes > limit


def _identity(hit: Hit) -> tuple[str, str, str]:
    return (hit.event.item.source, hit.event.item.key, hit.event.dedup_key)


def _week(at: datetime) -> date:
    day = at.date()
    return day - timedelta(days=(day.weekday() + 1) % 7)
