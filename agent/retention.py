"""Retention: old deliveries and change events are deleted, so the database stays bounded.

A delivery is history once it is final (sent, cancelled, dead, suppressed);
past ``[agent] keep_deliveries`` it is deleted. A change event past
``keep_events`` that no delivery still names is deleted too. Items are kept:
each is the last known state that change detection compares with, one row per
publication, whatever its age. Deliveries still to be sent are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col

from agent.models import Delivery, DeliveryStatus, StoredEvent

#: Deliveries in these states are history: nothing will send them again unless
#: an admin replays them, which is done long before they are pruned.
FINAL = (
    DeliveryStatus.SENT,
    DeliveryStatus.CANCELLED,
    DeliveryStatus.DEAD,
    DeliveryStatus.SUPPRESSED,
)


@dataclass(frozen=True)
class Pruned:
    """How many rows one pass deleted."""

    deliveries: int
    events: int


def prune(session: Session, *, deliveries_before: datetime, events_before: datetime) -> Pruned:
    """Delete final deliveries made before one time and unreferenced events before another."""
    deliveries = session.execute(
        sa.delete(Delivery).where(
            col(Delivery.status).in_([status.value for status in FINAL]),
            col(Delivery.created_at) < deliveries_before,
        )
    )
    still_named = sa.select(col(Delivery.event_id)).where(col(Delivery.event_id) == StoredEvent.id)
    events = session.execute(
        sa.delete(StoredEvent).where(
            col(StoredEvent.created_at) < events_before, ~sa.exists(still_named)
        )
    )
    return Pruned(deliveries.rowcount, events.rowcount)  # type: ignore[attr-defined]
