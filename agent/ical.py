"""A subscription's deadlines as an iCalendar (RFC 5545) feed, for a team's calendar.

One event per matched item with a deadline, built from the item's current
state, so the calendar follows the source: the event's ``UID`` names the item
(not a version), and when the deadline moves the same event moves, its
``SEQUENCE`` counting the moves and ``DTSTAMP``/``LAST-MODIFIED`` saying when.

A deadline at local midnight is a date without a time (that is how sources
write date-only deadlines), so it becomes an all-day event on that date;
any other deadline is an instant in the service's zone (``TZID``), with no
``DTEND``: per RFC 5545 it then ends when it starts. Every event is
transparent (it does not make anyone busy) and reminds the day before.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from babel.dates import format_date
from icalendar import TRANSP, Alarm, Calendar, Event

from agent import i18n
from agent.models import Item

if TYPE_CHECKING:
    from agent.rendering import Recipient, Renderer

#: How often calendar clients should fetch the feed again.
REFRESH = timedelta(hours=1)

#: When the reminder rings, before a deadline with a time: the day before.
REMINDER = timedelta(days=1)
#: Before an all-day deadline (which starts at midnight): 09:00 the day before.
REMINDER_ALL_DAY = timedelta(hours=15)


@dataclass(frozen=True)
class Dated:
    """A matched item with a deadline, as the store has it now."""

    item: Item
    first_seen_at: datetime
    #: When the item last changed: the event's DTSTAMP and LAST-MODIFIED.
    changed_at: datetime
    #: How many times its deadline moved: the event's SEQUENCE.
    moves: int = 0


def event_uid(item: Item, host: str) -> str:
    """The event's UID: one per item (source and key), whatever its version."""
    digest = hashlib.sha256(f"{item.source}\x00{item.key}".encode()).hexdigest()[:32]
    return f"{digest}@{host}"


def render(
    renderer: Renderer,
    recipient: Recipient,
    dated: Sequence[Dated],
    *,
    updated_at: datetime,
    self_url: str,
) -> bytes:
    """Render the calendar of ``dated`` items in the recipient's language."""
    language = i18n.language_of(recipient.language)
    strings = renderer.strings(language)
    name = str(strings["calendar_title"]).format(
        site=renderer.site_name, subscription=recipient.subscription_name
    )
    calendar = Calendar.new(
        name=name,
        prodid=f"-//{renderer.site_name}//smart-agent//{language.upper()}",
        # Stable, so the same subscription is the same calendar on every fetch.
        uid=uuid.uuid5(uuid.NAMESPACE_URL, recipient.feed_url),
        last_modified=updated_at,
        refresh_interval=REFRESH,
        source=self_url,
        url=self_url,
    )
    # Outlook's and Google's spellings of the refresh interval and the zone.
    calendar.add("X-PUBLISHED-TTL", REFRESH)
    calendar.add("X-WR-TIMEZONE", renderer.zone.key)
    host = urlsplit(recipient.feed_url).hostname or "smart-agent.invalid"
    # In deadline order, so the same items always make the same bytes (and ETag).
    for one in sorted(dated, key=_order):
        calendar.add_component(_event(renderer, language, one, host))
    calendar.add_missing_timezones()
    body: bytes = calendar.to_ical()
    return body


def _order(dated: Dated) -> tuple[str, str, str]:
    deadline = dated.item.deadline
    return (deadline.isoformat() if deadline else "", dated.item.source, dated.item.key)


def _event(renderer: Renderer, language: str, dated: Dated, host: str) -> Event:
    item = dated.item
    assert item.deadline is not None, "only items with a deadline are in the calendar"
    strings = renderer.strings(language)
    start = _start(item.deadline, renderer.zone)
    event = Event.new(
        uid=event_uid(item, host),
        stamp=dated.changed_at,
        created=dated.first_seen_at,
        last_modified=dated.changed_at,
        sequence=dated.moves,
        start=start,
        # An all-day event ends the next day (RFC 5545 §3.6.1); an instant has no end.
        end=None if isinstance(start, datetime) else start + timedelta(days=1),
        summary=_line(item.title),
        description=_description(renderer, language, item),
        url=item.url,
        transparency=TRANSP.TRANSPARENT,
    )
    for field in ("SUMMARY", "DESCRIPTION"):
        event[field].params["LANGUAGE"] = language
    reminder = str(strings["calendar_reminder"]).format(title=_line(item.title))
    ahead = REMINDER if isinstance(start, datetime) else REMINDER_ALL_DAY
    event.add_component(Alarm.new_display(reminder, -ahead))
    return event


def _description(renderer: Renderer, language: str, item: Item) -> str:
    """Kind, publisher, amount, the exact deadline and the link, a line each."""
    strings = renderer.strings(language)
    lines = [str(strings["kind"].get(item.kind.value, item.kind.value))]
    who = " · ".join(_line(part) for part in (item.publisher, item.publishing_unit) if part)
    if who:
        lines.append(f"{strings['publisher']}: {who}")
    if item.amount is not None:
        lines.append(f"{strings['amount']}: {i18n.amount(item.amount, item.currency, language)}")
    if item.deadline is not None:
        lines.append(f"{strings['deadline']}: {_when(renderer, language, item.deadline)}")
    if item.url:
        lines.append(item.url)
    return "\n".join(lines)


def _line(text: str) -> str:
    """``text`` on one line: a title's line breaks mean nothing in a calendar's summary."""
    return " ".join(text.split())


def _start(deadline: datetime, zone: ZoneInfo) -> date | datetime:
    """The event's start: the local date of a deadline at midnight, else the local instant."""
    local = deadline.astimezone(zone)
    return local.date() if local.time() == time(0, 0) else local


def _when(renderer: Renderer, language: str, deadline: datetime) -> str:
    """The deadline as the reader reads it: a date alone when it has no time."""
    start = _start(deadline, renderer.zone)
    if isinstance(start, datetime):
        return i18n.moment(deadline, language, renderer.strings(language), renderer.zone)
    return format_date(start, "long", locale=i18n.LOCALES[language])
