"""The admin console's figures: counts per local day, subscriptions, dead deliveries.

Days are the service's local days (``[agent] timezone``), so a bar is the day
an admin in Israel would name. Rows are grouped in Python rather than in SQL:
converting to a time zone is different in every database, and thirty days of
timestamps is little to read.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from sqlalchemy import func
from sqlmodel import Session, col, select

from agent.i18n import LOCALES
from agent.models import Delivery, DeliveryStatus, StoredItem, Subscription

#: How far back the dashboard's charts look.
CHART_DAYS = 30
#: The window of the sources page's "items per day" average.
AVERAGE_DAYS = 7

#: A chart's rows: (label, value) pairs, oldest first.
Rows = list[tuple[str, int]]


@dataclass(frozen=True)
class Days:
    """A run of local days ending today, and the instant the first one began."""

    days: list[date]
    start: datetime
    zone: ZoneInfo

    @classmethod
    def ending(cls, now: datetime, zone: ZoneInfo, count: int = CHART_DAYS) -> Days:
        """The ``count`` local days up to and including today."""
        today = now.astimezone(zone).date()
        days = [today - timedelta(days=back) for back in range(count - 1, -1, -1)]
        start = datetime.combine(days[0], time(), tzinfo=zone).astimezone(UTC)
        return cls(days, start, zone)

    def rows(self, counts: Counter[date], language: str) -> Rows:
        """One (short local date, count) row per day, oldest first."""
        locale = LOCALES[language]
        return [(format_skeleton("MMMd", day, locale=locale), counts[day]) for day in self.days]

    def group(self, rows: Iterable[tuple[str, datetime]]) -> dict[str, Counter[date]]:
        """Count (name, instant) rows by name and local day."""
        counts: dict[str, Counter[date]] = defaultdict(Counter)
        for name, at in rows:
            counts[name][at.astimezone(self.zone).date()] += 1
        return dict(counts)


def items_per_day(session: Session, days: Days) -> dict[str, Counter[date]]:
    """New items (first seen) per source and local day."""
    found = session.exec(
        select(StoredItem.source, StoredItem.first_seen_at).where(
            col(StoredItem.first_seen_at) >= days.start
        )
    ).all()
    return days.group(found)


def sent_per_day(session: Session, days: Days) -> dict[str, Counter[date]]:
    """Deliveries sent per channel and local day."""
    found = session.exec(
        select(Delivery.channel, Delivery.sent_at).where(
            Delivery.status == DeliveryStatus.SENT, col(Delivery.sent_at) >= days.start
        )
    ).all()
    return days.group((channel, at) for channel, at in found if at is not None)


def items_since(session: Session, since: datetime) -> Counter[str]:
    """New items per source since ``since``."""
    found = session.exec(
        select(StoredItem.source, func.count())
        .where(col(StoredItem.first_seen_at) >= since)
        .group_by(col(StoredItem.source))
    ).all()
    return Counter(dict(found))


@dataclass(frozen=True)
class SubscriptionCounts:
    """How many subscriptions are active, paused, and waiting for their address's confirmation."""

    active: int
    paused: int
    awaiting: int


def subscription_counts(session: Session) -> SubscriptionCounts:
    """Count subscriptions by state; an unconfirmed one is awaiting, not paused."""
    found = session.exec(
        select(Subscription.active, Subscription.awaiting_confirmation, func.count()).group_by(
            col(Subscription.active), col(Subscription.awaiting_confirmation)
        )
    ).all()
    counts: Counter[str] = Counter()
    for active, awaiting, count in found:
        state = "awaiting" if awaiting else "active" if active else "paused"
        counts[state] += count
    return SubscriptionCounts(counts["active"], counts["paused"], counts["awaiting"])


def dead_deliveries(session: Session) -> int:
    """Deliveries that ran out of attempts or failed for good."""
    found = session.exec(
        select(func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.DEAD)
    ).one()
    return int(found)
