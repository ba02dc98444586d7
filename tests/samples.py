"""Realistic alerts in Hebrew, Arabic and English, for rendering and channel tests."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.models import Change, Event, EventType, Item, Kind
from agent.rendering import Alert, Recipient
from tests.conftest import NOW

HEBREW_TITLE = "מכרז לשירותי ענן ומחשוב למשרד הבריאות"
ARABIC_TITLE = "مناقصة لخدمات الحوسبة السحابية لوزارة الصحة"
ENGLISH_TITLE = "Cloud computing services for the Ministry of Health"

#: 1 December 2026, 10:00 UTC = 12:00 in Jerusalem (winter, UTC+2); 8 days after NOW.
DEADLINE = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

REASONS: list[dict[str, Any]] = [
    {"clause": "מחשוב", "field": "title", "term": "מחשוב", "matched": "ומחשוב"},
    {"clause": "kind:tender", "field": "kind", "matched": "tender"},
]


def item(title: str = HEBREW_TITLE, **changes: Any) -> Item:
    """Return a tender like gov.il publishes, with any field replaced."""
    fields: dict[str, Any] = {
        "source": "govil-tenders",
        "kind": Kind.TENDER,
        # Another title is another tender, so a digest does not fold them into one.
        "key": "tender-2026-117"
        if title == HEBREW_TITLE
        else f"tender-{zlib.crc32(title.encode(errors='surrogatepass'))}",
        "title": title,
        "description": "אספקת שירותי ענן ציבורי, הגירה ותחזוקה לשלוש שנים.",
        "publisher": "משרד הבריאות",
        "publishing_unit": "אגף מערכות מידע",
        "amount": 1_250_000.0,
        "currency": "ILS",
        "deadline": DEADLINE,
        "url": "https://www.gov.il/he/departments/publications/Call_for_bids/tender-117?a=1&b=2",
    }
    fields.update(changes)
    return Item(**fields)


def alert(
    delivery_id: int = 1,
    *,
    subject: Item | None = None,
    event: EventType = EventType.NEW,
    changes: dict[str, Change] | None = None,
    reasons: list[dict[str, Any]] | None = None,
) -> Alert:
    """Return an alert for ``subject`` (a Hebrew tender by default)."""
    found = subject or item()
    return Alert(
        delivery_id=delivery_id,
        event=Event(
            type=event,
            item=found,
            changes=changes or {},
            dedup_key=f"{event.value}:{delivery_id}",
        ),
        reasons=REASONS if reasons is None else reasons,
        created_at=NOW - timedelta(minutes=5),
        # As the outbox stores one with each delivery: e-mail Message-IDs are made of it.
        message_token=f"token-of-delivery-{delivery_id}",
    )


def recipient(
    language: str = "he", *, address: str = "team@ngo.example", unsubscribe: bool = True
) -> Recipient:
    """Return a subscriber with feed and unsubscribe links."""
    return Recipient(
        subscription_name="ענן ו-IT לבריאות",
        address=address,
        language=language,
        feed_url="https://alerts.example.org/feeds/tok123.xml",
        unsubscribe_url="https://alerts.example.org/unsubscribe/7.abc" if unsubscribe else None,
        manage_url="https://alerts.example.org/manage/7",
    )


def delivery_row(
    sub_id: int, event_id: int, channel: str = "email", *, at: datetime = NOW
) -> dict[str, Any]:
    """An outbox row as the pipeline queues it: pending, due ``at``."""
    return {
        "subscription_id": sub_id,
        "event_id": event_id,
        "channel": channel,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
        "reasons": [],
    }


@dataclass
class Clock:
    """A clock the test moves: pass it where the agent takes ``clock``."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now
