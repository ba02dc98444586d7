"""The feed routes: each subscription's alerts as Atom, RSS 2.0 and iCalendar.

* ``GET /feeds/<token>.xml`` -- Atom, the newest ``FEED_SIZE`` alerts;
* ``GET /feeds/<token>.rss`` -- the same alerts as RSS 2.0;
* ``GET /feeds/<token>.ics`` -- the deadlines of the matched items (``agent.ical``).

The token is the subscription's random ``feed_token``; any other is 404.
Alerts are the subscription's sent deliveries on a feed channel (``notifiers.
feed_channels``); the calendar holds every item such a delivery matched that
has a deadline, as the item is now, so a moved deadline moves the event.

Every answer carries an ``ETag`` (a hash of the body) and a ``Last-Modified``
(the newest alert, item change or subscription edit shown). A request naming
the ETag in ``If-None-Match``, or, without that header, sending an
``If-Modified-Since`` no older than ``Last-Modified``, gets 304 and no body
(RFC 9110 §13.1.2 and §13.2.2: ``If-None-Match`` wins, compared weakly).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

from sqlalchemy import ColumnElement, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent import ical
from agent.feeds import FeedFormat, FeedLinks
from agent.links import Links
from agent.models import (
    Delivery,
    DeliveryStatus,
    EventType,
    StoredEvent,
    StoredItem,
    Subscription,
)
from agent.rendering import Alert, Renderer
from agent.sending import alert_for, recipient_for
from notifiers import feed_channels

#: Entries per feed: enough for a reader polling daily, small enough to stay fast.
FEED_SIZE = 50

#: Events per calendar, soonest deadline first; and how long a passed deadline stays.
CALENDAR_SIZE = 500
CALENDAR_PAST = timedelta(days=90)

#: How long a client may reuse an answer before asking again (with its validators).
CACHE_CONTROL = "max-age=300"


def feed_routes(
    db: Engine, renderer: Renderer, links: Links, *, clock: Callable[[], datetime]
) -> list[Route]:
    """The routes of every feed format, for ``agent.web.create_app``."""

    def endpoint(fmt: FeedFormat) -> Callable[[Request], Response]:
        def serve(request: Request) -> Response:
            with Session(db) as session:
                sub = session.exec(
                    select(Subscription).where(
                        Subscription.feed_token == request.path_params["token"]
                    )
                ).first()
                if sub is None:
                    return Response("no such feed", status_code=404, media_type="text/plain")
                body, modified = _render(session, sub, fmt, renderer, links, clock())
            return _conditional(request, body, modified, fmt.media_type)

        return serve

    # Synchronous endpoints: Starlette runs them in a thread, off the event loop.
    return [Route(f"/feeds/{{token}}.{fmt.value}", endpoint(fmt)) for fmt in FeedFormat]


def _render(
    session: Session,
    sub: Subscription,
    fmt: FeedFormat,
    renderer: Renderer,
    links: Links,
    now: datetime,
) -> tuple[bytes, datetime]:
    """The feed's body and when what it shows last changed."""
    recipient = recipient_for(sub, sub.feed_token, links)
    self_url = links.feed_url(sub, fmt)
    if fmt is FeedFormat.ICS:
        dated = _dated(session, sub, since=now - CALENDAR_PAST)
        # A new match may bring an item that changed long ago: its delivery's time counts too.
        times = [sub.updated_at, _last_matched(session, sub), *(d.changed_at for d in dated)]
        modified = max(t for t in times if t is not None)
        body = ical.render(renderer, recipient, dated, updated_at=modified, self_url=self_url)
        return body, modified
    shown = _alerts(session, sub)
    # When an entry was published here (sent), not when its event happened: a digest's
    # rows are sent hours after their events, and a reader asking since then must get them.
    modified = max([sub.updated_at, *(when for _, when in shown)])
    alerts = [alert for alert, _ in shown]
    where = FeedLinks(self_url, links.public_url)
    body = renderer.render_feed(recipient, alerts, updated_at=modified, fmt=fmt, links=where)
    return body, modified


def _alerts(session: Session, sub: Subscription) -> list[tuple[Alert, datetime]]:
    """The subscription's newest sent feed alerts, newest first, with when each was sent."""
    query = (
        select(Delivery, StoredEvent)
        .join(StoredEvent, col(StoredEvent.id) == Delivery.event_id)
        .where(Delivery.subscription_id == sub.id)
        .where(col(Delivery.channel).in_(feed_channels()))
        .where(Delivery.status == DeliveryStatus.SENT)
        .order_by(col(Delivery.created_at).desc(), col(Delivery.id).desc())
        .limit(FEED_SIZE)
    )
    return [
        (alert_for(delivery, event), delivery.sent_at or delivery.created_at)
        for delivery, event in session.exec(query).all()
    ]


def _matched(sub: Subscription) -> tuple[ColumnElement[bool], ...]:
    """The subscription's feed deliveries that still count as matches (not withdrawn)."""
    # Any delivery not withdrawn counts: the item matched, whatever the feed has sent yet.
    return (
        col(Delivery.subscription_id) == sub.id,
        col(Delivery.channel).in_(feed_channels()),
        col(Delivery.status) != DeliveryStatus.CANCELLED,
    )


def _last_matched(session: Session, sub: Subscription) -> datetime | None:
    """When the subscription last matched an item for a feed."""
    latest: datetime | None = session.exec(
        select(func.max(Delivery.created_at)).where(*_matched(sub))
    ).one()
    return latest


def _dated(session: Session, sub: Subscription, *, since: datetime) -> list[ical.Dated]:
    """The items the subscription was alerted about on a feed, with a deadline after ``since``."""
    matched = (
        select(StoredEvent.item_id)
        .join(Delivery, col(Delivery.event_id) == StoredEvent.id)
        .where(*_matched(sub))
    )
    rows = session.exec(
        select(StoredItem)
        .where(col(StoredItem.id).in_(matched))
        .where(col(StoredItem.deadline) >= since)
        .order_by(col(StoredItem.deadline), col(StoredItem.id))
        .limit(CALENDAR_SIZE)
    ).all()
    moves = _deadline_moves(session, [row.id for row in rows if row.id is not None])
    return [
        ical.Dated(row.to_item(), row.first_seen_at, row.changed_at, moves.get(row.id or 0, 0))
        for row in rows
    ]


def _deadline_moves(session: Session, item_ids: list[int]) -> dict[int, int]:
    """How many times each item's deadline moved, by item id."""
    if not item_ids:
        return {}
    query = (
        select(StoredEvent.item_id, func.count())
        .where(col(StoredEvent.item_id).in_(item_ids))
        .where(StoredEvent.type == EventType.DEADLINE_CHANGED)
        .group_by(col(StoredEvent.item_id))
    )
    return dict(session.exec(query).all())


def _conditional(request: Request, body: bytes, modified: datetime, media_type: str) -> Response:
    """Answer 304 when the client's copy is current, else the body; both with validators."""
    headers = {
        "ETag": '"' + hashlib.sha256(body).hexdigest()[:40] + '"',
        "Last-Modified": format_datetime(modified.astimezone(UTC), usegmt=True),
        "Cache-Control": CACHE_CONTROL,
    }
    if _not_modified(request, headers["ETag"], modified):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _not_modified(request: Request, etag: str, modified: datetime) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    since = _http_date(request.headers.get("if-modified-since"))
    # HTTP dates have whole seconds; the stored times have microseconds.
    return since is not None and modified.replace(microsecond=0) <= since


def _http_date(text: str | None) -> datetime | None:
    """An HTTP date as an aware datetime; None for anything else (the header is then ignored)."""
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else None
