"""The outbox: one ``Delivery`` row per (subscription, event, channel).

Rows are written in the same transaction as the items and events that caused
them, so a crash loses neither. The dispatcher then works in three short
transactions around each send:

1. ``claim`` marks due rows ``sending`` with a lease (``next_attempt_at`` moves
   forward), so a second dispatcher, or this one after a restart, does not
   pick them up while the send is under way;
2. the channel is called with no transaction open;
3. ``mark_sent`` (only after the channel accepted) or ``mark_failed``
   (backoff, or ``dead`` once retries are used up or the error is permanent).

A crash between 2 and 3 leaves the row ``sending``; when the lease expires it
is sent again. That is the one window in which a message can be duplicated,
and it is as narrow as one send: an alert is never lost to save a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from agent.errors import DeliveryError, RateLimited
from agent.models import Delivery, StoredEvent, Subscription

#: How long a claimed row stays invisible to other dispatch runs.
LEASE = timedelta(minutes=5)
#: Retry backoff: 1, 2, 4, ... minutes, capped at six hours.
BACKOFF_CAP = timedelta(hours=6)


@dataclass(frozen=True)
class Claimed:
    """A due delivery with what rendering needs."""

    delivery: Delivery
    subscription: Subscription
    event: StoredEvent


def due_at(cadence: str, now: datetime, *, zone: str, hour: int) -> datetime:
    """When a new alert should go out: now, or at the next daily/weekly digest."""
    if cadence == "immediate":
        return now
    local = now.astimezone(ZoneInfo(zone))
    slot = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if slot <= local:
        slot += timedelta(days=1)
    if cadence == "weekly":  # Sunday, the first day of the Israeli working week
        slot += timedelta(days=(6 - slot.weekday()) % 7)
    return slot.astimezone(now.tzinfo)


def enqueue(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Insert delivery rows, skipping any that already exist; return how many were new."""
    values = list(rows)
    if not values:
        return 0
    dialect = session.get_bind().dialect.name
    # The one dialect-specific statement: an idempotent insert.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Delivery).values(values).on_conflict_do_nothing()
    result = session.execute(statement)
    return max(result.rowcount or 0, 0)  # type: ignore[attr-defined]


def claim(session: Session, *, now: datetime, limit: int = 200) -> list[Claimed]:
    """Take due rows (pending, or sending with an expired lease) and lease them."""
    query = (
        select(Delivery, Subscription, StoredEvent)
        .join(Subscription, col(Subscription.id) == Delivery.subscription_id)
        .join(StoredEvent, col(StoredEvent.id) == Delivery.event_id)
        .where(col(Delivery.status).in_(("pending", "sending")))
        .where(col(Delivery.next_attempt_at) <= now)
        .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
        .limit(limit)
    )
    claimed = [Claimed(d, s, e) for d, s, e in session.exec(query).all()]
    for item in claimed:
        item.delivery.status = "sending"
        item.delivery.next_attempt_at = now + LEASE
        session.add(item.delivery)
    return claimed


def mark_sent(session: Session, ids: Sequence[int], *, now: datetime, receipt: str | None) -> None:
    """Record that the channel accepted the message carrying ``ids``."""
    for delivery in _rows(session, ids):
        delivery.status = "sent"
        delivery.sent_at = now
        delivery.attempts += 1
        delivery.receipt = receipt
        delivery.last_error = None
        session.add(delivery)


def mark_failed(
    session: Session, ids: Sequence[int], error: DeliveryError, *, now: datetime, max_attempts: int
) -> int:
    """Schedule a retry with backoff, or mark the rows dead; return how many died."""
    dead = 0
    for delivery in _rows(session, ids):
        delivery.attempts += 1
        delivery.last_error = str(error)
        if not error.retryable or delivery.attempts >= max_attempts:
            delivery.status = "dead"
            dead += 1
        else:
            delivery.status = "pending"
            delivery.next_attempt_at = now + retry_delay(error, delivery.attempts)
        session.add(delivery)
    return dead


def retry_delay(error: DeliveryError, attempts: int) -> timedelta:
    """How long to wait before the next attempt."""
    if isinstance(error, RateLimited):
        return timedelta(seconds=error.retry_after)
    return min(timedelta(minutes=2 ** (attempts - 1)), BACKOFF_CAP)


def replay(session: Session, ids: Sequence[int], *, now: datetime) -> int:
    """Put dead (or sent) deliveries back in the queue; return how many."""
    rows = _rows(session, ids)
    for delivery in rows:
        delivery.status = "pending"
        delivery.attempts = 0
        delivery.next_attempt_at = now
        session.add(delivery)
    return len(rows)


def _rows(session: Session, ids: Sequence[int]) -> list[Delivery]:
    return list(session.exec(select(Delivery).where(col(Delivery.id).in_(list(ids)))))
