"""The outbox: one ``Delivery`` row per (subscription, event, channel).

Rows are written in the same transaction as the items and events that caused
them, so a crash loses neither. The dispatcher then works one (subscription,
channel) group at a time, in short transactions around each send:

1. ``claim`` leases the group's due rows in **one conditional UPDATE** (status
   and lease re-checked in its WHERE, owner set to the run's token), so of two
   dispatchers started at the same instant exactly one gets each row, and rows
   not yet reached by a run are never leased by it;
2. the channel is called with no transaction open;
3. ``mark_sent`` (only after the channel accepted, and only for rows this run
   still owns) or ``mark_failed`` (backoff; a rate limit waits without using an
   attempt; ``dead`` once attempts are used up or the error is permanent).

A crash between 2 and 3 leaves the group ``sending``; when its lease expires
it is sent again. That is the one window in which a message can be
duplicated, and it is as narrow as one send: an alert is never lost to save a
duplicate. Rows of an inactive subscription are never claimed, and
``cancel`` marks what it had queued.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from agent.errors import DeliveryError, RateLimited
from agent.models import Delivery, DeliveryStatus, StoredEvent, Subscription, Suppression
from agent.schedule import Cadence, Schedule

#: How long a claimed group stays invisible to other dispatch runs: far longer
#: than one send, since only the group being sent is ever leased.
LEASE = timedelta(minutes=5)
#: At most this many rows of one group are leased (and sent) at a time.
GROUP_LIMIT = 200
#: Statuses a row can be claimed from (``sending`` only once its lease expired).
_CLAIMABLE = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.SENDING)
#: Retry backoff: 1, 2, 4, ... minutes, capped at six hours.
BACKOFF_CAP = timedelta(hours=6)
#: Statuses ``retry_now`` acts on: failed, waiting for another attempt.
RETRYABLE = (DeliveryStatus.RETRYING,)
#: Statuses ``replay`` acts on: never those queued or being sent (they would go twice).
REPLAYABLE = (DeliveryStatus.DEAD, DeliveryStatus.SENT, DeliveryStatus.SUPPRESSED)


#: A dispatch unit: one subscription's alerts on one channel.
Group = tuple[int, str]


@dataclass(frozen=True)
class Claimed:
    """A delivery with its subscription and event: what rendering, the ledger and "why" need."""

    delivery: Delivery
    subscription: Subscription
    event: StoredEvent


def due_at(cadence: str, now: datetime, *, zone: str, hour: int) -> datetime:
    """When a new alert should go out: now, or at the next daily/weekly digest."""
    return Schedule(Cadence(cadence), ZoneInfo(zone), hour).due(now)


def enqueue(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Insert delivery rows, skipping any that already exist; return how many were new."""
    values = list(rows)
    if not values:
        return 0
    dialect = session.get_bind().dialect.name
    # The one dialect-specific statement: an idempotent insert.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # One short statement run for every row (executemany on the Core table), not one
    # statement with every row's values: that one outgrows the database's limit on
    # bound parameters (SQLite 32,766 or 250,000, PostgreSQL 65,535) in a big poll.
    table = Delivery.__table__  # type: ignore[attr-defined]
    statement = insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        # psycopg reports no row count for a batch: count the rows the insert returns.
        queued = len(session.execute(statement.returning(table.c.id), values).all())
    else:
        queued = max(session.execute(statement, values).rowcount or 0, 0)  # type: ignore[attr-defined]
    if queued:
        announce(session)
    return queued


#: The PostgreSQL channel workers LISTEN on (``agent.wakeup``): alerts are due.
WAKE_CHANNEL = "smart_agent_outbox"


def announce(session: Session) -> None:
    """Wake every worker once this transaction commits: PostgreSQL's NOTIFY, elsewhere nothing."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {WAKE_CHANNEL}"))


def due_groups(session: Session, *, now: datetime, limit: int = 10_000) -> list[Group]:
    """The (subscription, channel) pairs with due rows of active subscriptions, oldest first."""
    query = (
        select(Delivery.subscription_id, Delivery.channel)
        .join(Subscription, col(Subscription.id) == Delivery.subscription_id)
        .where(_due(now), col(Subscription.active))
        .group_by(col(Delivery.subscription_id), col(Delivery.channel))
        .order_by(func.min(Delivery.next_attempt_at))
        .limit(limit)
    )
    return [(sub, channel) for sub, channel in session.exec(query).all()]


def next_group(
    session: Session,
    *,
    now: datetime,
    skip: Collection[str] = (),
    busy: Collection[Group] = (),
) -> Group | None:
    """The group of the oldest due row of an active subscription, on a channel not in ``skip``.

    Groups in ``busy`` (being sent already) are passed over.

    On PostgreSQL the row's subscription is locked (``FOR NO KEY UPDATE SKIP
    LOCKED``) until the caller commits, so workers asking at once are handed
    different subscriptions instead of queueing behind one another. Locking
    the delivery row alone would hand a second worker the same group through
    its next row, and their two claims would deadlock. The lock lets a poll
    insert new rows meanwhile; SQLite has one writer anyway.
    """
    query = (
        select(Delivery.subscription_id, Delivery.channel)
        .join(Subscription, col(Subscription.id) == Delivery.subscription_id)
        .where(_due(now), col(Subscription.active))
        .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
        .limit(1)
        .with_for_update(skip_locked=True, key_share=True, of=Subscription)
    )
    if skip:
        query = query.where(col(Delivery.channel).not_in(list(skip)))
    if busy:
        pair = tuple_(col(Delivery.subscription_id), col(Delivery.channel))
        query = query.where(pair.not_in(list(busy)))
    found = session.exec(query).first()
    return None if found is None else (found[0], found[1])


def claim(
    session: Session,
    group: Group,
    *,
    now: datetime,
    owner: str,
    limit: int = GROUP_LIMIT,
    lease: timedelta = LEASE,
) -> list[Claimed]:
    """Lease the due rows of one group for ``owner`` for ``lease``; return those it got.

    One UPDATE re-checks status and lease in its WHERE, so a row another run
    claimed a moment ago is not taken again; the caller commits at once. Rows
    whose run died mid-send are claimed alone, without the alerts due since:
    sent as they were first made, their e-mail keeps its Message-ID.
    """
    subscription_id, channel = group
    in_group = and_(
        col(Delivery.subscription_id) == subscription_id, col(Delivery.channel) == channel
    )
    resend = and_(_due(now), col(Delivery.status) == DeliveryStatus.SENDING)
    stale = session.exec(select(Delivery.id).where(in_group, resend).limit(1)).first()
    due = _due(now) if stale is None else resend
    due_ids = (
        select(Delivery.id)
        .join(Subscription, col(Subscription.id) == Delivery.subscription_id)
        .where(in_group, due, col(Subscription.active))
        .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
        .limit(limit)
    )
    session.execute(
        update(Delivery)
        .where(col(Delivery.id).in_(due_ids.scalar_subquery()), due)
        .values(status=DeliveryStatus.SENDING, lease_owner=owner, next_attempt_at=now + lease)
        .execution_options(synchronize_session=False)
    )
    query = (
        select(Delivery, Subscription, StoredEvent)
        .join(Subscription, col(Subscription.id) == Delivery.subscription_id)
        .join(StoredEvent, col(StoredEvent.id) == Delivery.event_id)
        .where(_owned(owner), Delivery.subscription_id == subscription_id)
        .where(Delivery.channel == channel)
        .order_by(col(Delivery.id))
    )
    return [Claimed(d, s, e) for d, s, e in session.exec(query).all()]


def mark_sent(
    session: Session, ids: Sequence[int], *, owner: str, now: datetime, receipt: str | None
) -> int:
    """Record that the channel accepted the message carrying ``ids``; return rows marked.

    Rows another run owns by now (this run's lease expired) are left alone.
    """
    result = session.execute(
        update(Delivery)
        .where(col(Delivery.id).in_(list(ids)), _owned(owner))
        .values(
            status=DeliveryStatus.SENT,
            sent_at=now,
            attempts=Delivery.attempts + 1,
            receipt=receipt,
            last_error=None,
            lease_owner=None,
        )
        .execution_options(synchronize_session=False)
    )
    return max(result.rowcount or 0, 0)  # type: ignore[attr-defined]


def mark_failed(
    session: Session,
    ids: Sequence[int],
    error: DeliveryError,
    *,
    owner: str,
    now: datetime,
    max_attempts: int,
) -> int:
    """Schedule a retry with backoff, or mark the rows dead; return how many died.

    A rate limit is not a failure: the rows wait ``retry_after`` and keep their attempts.
    """
    dead = 0
    rows = session.exec(select(Delivery).where(col(Delivery.id).in_(list(ids)), _owned(owner)))
    for delivery in rows.all():
        delivery.lease_owner = None
        delivery.last_error = str(error)
        if not isinstance(error, RateLimited):
            delivery.attempts += 1
        if not error.retryable or delivery.attempts >= max_attempts:
            delivery.status = DeliveryStatus.DEAD
            dead += 1
        else:
            delivery.status = DeliveryStatus.RETRYING
            delivery.next_attempt_at = now + retry_delay(error, delivery.attempts)
        session.add(delivery)
    return dead


def release(session: Session, ids: Sequence[int], *, owner: str, reason: str) -> int:
    """Give owned rows back unsent, due as when they were made; return how many.

    For a channel that could not be reached: no attempt is used up, and the
    rows keep their place, so once the channel is back they go out in the order
    they were made.
    """
    result = session.execute(
        update(Delivery)
        .where(col(Delivery.id).in_(list(ids)), _owned(owner))
        .values(
            status=DeliveryStatus.RETRYING,
            lease_owner=None,
            last_error=reason,
            next_attempt_at=Delivery.created_at,
        )
        .execution_options(synchronize_session=False)
    )
    return max(result.rowcount or 0, 0)  # type: ignore[attr-defined]


def cancel(session: Session, subscription_id: int, *, reason: str) -> int:
    """Mark what an unsubscribed subscription still had queued; return how many rows."""
    result = session.execute(
        update(Delivery)
        .where(col(Delivery.subscription_id) == subscription_id)
        .where(col(Delivery.status).in_((DeliveryStatus.PENDING, DeliveryStatus.RETRYING)))
        .values(status=DeliveryStatus.CANCELLED, last_error=reason)
        .execution_options(synchronize_session=False)
    )
    return max(result.rowcount or 0, 0)  # type: ignore[attr-defined]


def cancel_channel(session: Session, subscription_id: int, channel: str, *, reason: str) -> int:
    """Mark what a subscription had queued or held on one channel it left; return how many."""
    waiting = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.SUPPRESSED)
    result = session.execute(
        update(Delivery)
        .where(col(Delivery.subscription_id) == subscription_id, col(Delivery.channel) == channel)
        .where(col(Delivery.status).in_(waiting))
        .values(status=DeliveryStatus.CANCELLED, last_error=reason)
        .execution_options(synchronize_session=False)
    )
    return max(result.rowcount or 0, 0)  # type: ignore[attr-defined]


def sent_since(session: Session, subscription_id: int, channel: str, since: datetime) -> int:
    """How many of a subscription's alerts went out on ``channel`` since ``since``."""
    query = (
        select(func.count())
        .select_from(Delivery)
        .where(col(Delivery.subscription_id) == subscription_id)
        .where(col(Delivery.channel) == channel, col(Delivery.status) == DeliveryStatus.SENT)
        .where(col(Delivery.sent_at) >= since)
    )
    return int(session.exec(query).one())


def roll_over(session: Session, ids: Sequence[int], *, owner: str, due: datetime) -> int:
    """Hold owned rows for the digest at ``due``, marked so it says why; return how many."""
    result = session.execute(
        update(Delivery)
        .where(col(Delivery.id).in_(list(ids)), _owned(owner))
        .values(
            status=DeliveryStatus.PENDING, rolled_over=True, lease_owner=None, next_attempt_at=due
        )
        .execution_options(synchronize_session=False)
    )
    return max(result.rowcount or 0, 0)  # type: ignore[attr-defined]


def retry_now(session: Session, ids: Sequence[int], *, now: datetime) -> int:
    """Make failed rows waiting for a retry due now, keeping their attempts."""
    rows = [d for d in _rows(session, ids) if d.status in RETRYABLE]
    for delivery in rows:
        delivery.next_attempt_at = now
        session.add(delivery)
    if rows:
        announce(session)
    return len(rows)


def hold(session: Session, ids: Sequence[int], *, owner: str, reason: str) -> int:
    """Mark owned rows ``suppressed``: their address may not be sent to; return how many."""
    result = session.execute(
        update(Delivery)
        .where(col(Delivery.id).in_(list(ids)), _owned(owner))
        .values(status=DeliveryStatus.SUPPRESSED, last_error=reason, lease_owner=None)
        .execution_options(synchronize_session=False)
    )
    return max(result.rowcount or 0, 0)  # type: ignore[attr-defined]


def suppression(session: Session, channel: str, address: str) -> Suppression | None:
    """The active suppression of ``address`` on ``channel``, if any."""
    query = select(Suppression).where(
        Suppression.channel == channel,
        Suppression.address == address,
        col(Suppression.lifted_at).is_(None),
    )
    return session.exec(query).first()


def suppress(
    session: Session, channel: str, address: str, *, reason: str, now: datetime
) -> Suppression:
    """Suppress ``address`` on ``channel`` (again, if it was lifted), with the reason."""
    query = select(Suppression).where(
        Suppression.channel == channel, Suppression.address == address
    )
    row = session.exec(query).first() or Suppression(
        channel=channel, address=address, reason=reason, created_at=now
    )
    row.reason, row.created_at, row.lifted_at = reason, now, None
    session.add(row)
    return row


def lift(session: Session, channel: str, address: str, *, now: datetime) -> bool:
    """Lift the suppression of ``address`` on ``channel``; say whether there was one."""
    row = suppression(session, channel, address)
    if row is None:
        return False
    row.lifted_at = now
    session.add(row)
    return True


def retry_delay(error: DeliveryError, attempts: int) -> timedelta:
    """How long to wait before the next attempt."""
    if isinstance(error, RateLimited):
        return timedelta(seconds=error.retry_after)
    return min(timedelta(minutes=2 ** (attempts - 1)), BACKOFF_CAP)


def replay(session: Session, ids: Sequence[int], *, now: datetime) -> int:
    """Put dead (or sent) deliveries back in the queue; return how many.

    Rows still queued or being sent are left alone: replaying them could only
    send them twice.
    """
    rows = [d for d in _rows(session, ids) if d.status in REPLAYABLE]
    for delivery in rows:
        delivery.status = DeliveryStatus.PENDING
        delivery.lease_owner = None
        delivery.attempts = 0
        delivery.next_attempt_at = now
        session.add(delivery)
    if rows:
        announce(session)
    return len(rows)


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(col(Delivery.status).in_(_CLAIMABLE), col(Delivery.next_attempt_at) <= now)


def _owned(owner: str) -> ColumnElement[bool]:
    return and_(col(Delivery.status) == DeliveryStatus.SENDING, col(Delivery.lease_owner) == owner)


def _rows(session: Session, ids: Sequence[int]) -> list[Delivery]:
    return list(session.exec(select(Delivery).where(col(Delivery.id).in_(list(ids)))))
