"""The noise each subscription makes: matches and alerts sent, week by week.

A match is an event the rule matched (one ``Delivery`` row per channel, so
events are counted once); an alert sent is a ``Delivery`` row marked sent.
Both are counted over the last ``WEEKS`` weeks, in 7-day windows ending now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import distinct, func
from sqlmodel import Session, col, select

from agent.models import Delivery, DeliveryStatus, Subscription

#: How many weeks the noise is counted over.
WEEKS = 4


class State(StrEnum):
    """Where a subscription stands, as the console says it."""

    ACTIVE = "active"
    PAUSED = "paused"
    #: Made on the web; its address has not confirmed yet.
    AWAITING = "awaiting"

    @classmethod
    def of(cls, sub: Subscription) -> State:
        """The state of ``sub``."""
        if sub.awaiting_confirmation:
            return cls.AWAITING
        return cls.ACTIVE if sub.active else cls.PAUSED


@dataclass(frozen=True)
class Noise:
    """One subscription's matches and alerts sent over the last ``WEEKS`` weeks."""

    matches: int = 0
    sent: int = 0

    @property
    def matches_per_week(self) -> float:
        """Matches per week, on average."""
        return round(self.matches / WEEKS, 1)

    @property
    def sent_per_week(self) -> float:
        """Alerts sent per week, on average."""
        return round(self.sent / WEEKS, 1)


@dataclass(frozen=True)
class Week:
    """One 7-day window: when it began, its matches and its alerts sent."""

    start: datetime
    matches: int
    sent: int


def noise(session: Session, *, now: datetime) -> dict[int, Noise]:
    """Every subscription's noise over the last ``WEEKS`` weeks, by subscription id."""
    since = now - timedelta(weeks=WEEKS)
    matched = dict(
        session.exec(
            select(Delivery.subscription_id, func.count(distinct(col(Delivery.event_id))))
            .where(col(Delivery.created_at) >= since)
            .group_by(col(Delivery.subscription_id))
        ).all()
    )
    sent = dict(
        session.exec(
            select(Delivery.subscription_id, func.count())
            .where(col(Delivery.status) == DeliveryStatus.SENT, col(Delivery.sent_at) >= since)
            .group_by(col(Delivery.subscription_id))
        ).all()
    )
    return {
        sub_id: Noise(int(matched.get(sub_id, 0)), int(sent.get(sub_id, 0)))
        for sub_id in {*matched, *sent}
    }


def weeks(session: Session, subscription_id: int, *, now: datetime) -> list[Week]:
    """One subscription's matches and alerts sent in each of the last weeks, oldest first."""
    since = now - timedelta(weeks=WEEKS)
    rows = session.exec(
        select(Delivery.event_id, Delivery.created_at, Delivery.status, Delivery.sent_at).where(
            col(Delivery.subscription_id) == subscription_id,
            (col(Delivery.created_at) >= since) | (col(Delivery.sent_at) >= since),
        )
    ).all()
    starts = [since + timedelta(weeks=n) for n in range(WEEKS)]
    matched: list[set[int]] = [set() for _ in starts]
    sent = [0 for _ in starts]
    for event_id, created_at, status, sent_at in rows:
        if (index := _week_of(created_at, since)) is not None:
            matched[index].add(event_id)
        if status == DeliveryStatus.SENT and (index := _week_of(sent_at, since)) is not None:
            sent[index] += 1
    return [Week(start, len(matched[n]), sent[n]) for n, start in enumerate(starts)]


def _week_of(at: datetime | None, since: datetime) -> int | None:
    """Which of the windows ``at`` falls in (the last one ends now, included), if any."""
    if at is None or not since <= at <= since + timedelta(weeks=WEEKS):
        return None
    return min(int((at - since) / timedelta(weeks=1)), WEEKS - 1)
