"""The delivery ledger: what ``smart-agent deliveries``, the admin console and the API list.

Plain queries over the outbox (``agent.outbox``): choose deliveries by time,
status, channel and subscription, page through them newest first, load one with
its subscription and event, and say in a line why it matched.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from agent.models import Delivery, StoredEvent, Subscription
from agent.outbox import Claimed


def ledger_conditions(
    *,
    since: datetime | None = None,
    status: str | None = None,
    channel: str | None = None,
    subscription_id: int | None = None,
) -> list[ColumnElement[bool]]:
    """The WHERE clauses choosing deliveries: made since, in a status, on a channel, of one."""
    found: list[ColumnElement[bool]] = []
    if since is not None:
        found.append(col(Delivery.created_at) >= since)
    if status:
        found.append(col(Delivery.status) == status)
    if channel:
        found.append(col(Delivery.channel) == channel)
    if subscription_id is not None:
        found.append(col(Delivery.subscription_id) == subscription_id)
    return found


def ledger(
    session: Session, where: Sequence[ColumnElement[bool]], *, limit: int, offset: int = 0
) -> list[Claimed]:
    """The deliveries ``where`` chooses, newest first, with their subscriptions and events."""
    query = (
        select(Delivery, Subscription, StoredEvent)
        .join(Subscription, col(Subscription.id) == Delivery.subscription_id)
        .join(StoredEvent, col(StoredEvent.id) == Delivery.event_id)
        .where(*where)
        .order_by(col(Delivery.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return [Claimed(d, s, e) for d, s, e in session.exec(query).all()]


def ledger_count(session: Session, where: Sequence[ColumnElement[bool]]) -> int:
    """How many deliveries ``where`` chooses."""
    return int(session.exec(select(func.count()).select_from(Delivery).where(*where)).one())


def entry(session: Session, delivery_id: int) -> Claimed | None:
    """One delivery with its subscription and event, or ``None`` if there is none."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return None
    sub = session.get(Subscription, delivery.subscription_id)
    event = session.get(StoredEvent, delivery.event_id)
    if sub is None or event is None:
        return None
    return Claimed(delivery, sub, event)


def format_reason(reason: dict[str, object]) -> str:
    """One stored reason as a line: ``term 'מחשוב' in title (as 'למחשוב')``."""
    clause = reason.get("clause", "?")
    parts = [str(clause)]
    if reason.get("term"):
        parts.append(repr(reason["term"]))
    if reason.get("field"):
        parts.append(f"in {reason['field']}")
    if reason.get("matched") and reason.get("matched") != reason.get("term"):
        parts.append(f"(as {reason['matched']!r})")
    if reason.get("value") is not None:
        parts.append(f"= {reason['value']}")
    return " ".join(parts)
