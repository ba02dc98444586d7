"""A subscription's alerts as a feed: Atom 1.0 or RSS 2.0 (feedgen).

Each entry is one alert, its title and HTML the feed channel's templates
(``templates/<feed channel>/subject.txt`` and ``body.html``). An entry's id
names the item and its version (``entry_id``), so an updated item is a new
entry that readers show again, while the same alert rendered twice keeps its
id. The calendar of deadlines is ``agent.ical``; serving is ``agent.web.feeds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import quote

from feedgen.feed import FeedGenerator

from agent import i18n
from agent.models import Event, EventType
from notifiers import feed_channels

if TYPE_CHECKING:
    from agent.rendering import Alert, Recipient, Renderer


class FeedFormat(StrEnum):
    """The feed formats served for every subscription; the value is the URL suffix."""

    ATOM = "xml"
    RSS = "rss"
    ICS = "ics"

    @property
    def media_type(self) -> str:
        """The ``Content-Type`` the format is served with."""
        return _MEDIA_TYPES[self]


_MEDIA_TYPES = {
    FeedFormat.ATOM: "application/atom+xml; charset=utf-8",
    FeedFormat.RSS: "application/rss+xml; charset=utf-8",
    FeedFormat.ICS: "text/calendar; charset=utf-8",
}


def entry_id(event: Event) -> str:
    """The id of an alert's entry: the item's source and key, and the event's version.

    The event's ``dedup_key`` names the version (``new``, ``updated:<old>><new>``,
    ``closing_soon:<deadline>``), so each alert about an item has its own id and
    the same alert always the same one. Each part is percent-encoded: a source's
    key may hold colons, spaces or Hebrew.
    """
    item = event.item
    parts = (item.source, item.key, event.dedup_key)
    return "urn:smart-agent:" + ":".join(quote(part, safe="") for part in parts)


@dataclass(frozen=True)
class FeedLinks:
    """Where a feed lives: its own URL, and the site it belongs to (RSS needs one)."""

    self_url: str
    site_url: str


def render(
    renderer: Renderer,
    recipient: Recipient,
    alerts: Sequence[Alert],
    *,
    updated_at: datetime,
    fmt: FeedFormat = FeedFormat.ATOM,
    links: FeedLinks | None = None,
) -> bytes:
    """Render a subscription's feed in ``fmt`` (Atom or RSS), newest alert first as given."""
    where = links or FeedLinks(recipient.feed_url, recipient.feed_url)
    language = i18n.language_of(recipient.language)
    title = str(renderer.strings(language)["feed_title"]).format(
        site=renderer.site_name, subscription=recipient.subscription_name
    )
    feed = FeedGenerator()
    # The Atom id stays the Atom URL whatever the format: it names the subscription.
    feed.id(recipient.feed_url)
    feed.title(title)
    # RSS 2.0 requires a description and a channel link; Atom shows them as subtitle and link.
    feed.description(title)
    feed.link(href=where.self_url, rel="self")
    # feedgen makes the last link RSS's channel <link>: the site, not the feed.
    feed.link(href=where.site_url, rel="alternate")
    feed.language(language)
    feed.updated(updated_at)
    # feedgen prepends entries, so add oldest first to keep the given order.
    for alert in reversed(alerts):
        _entry(feed, renderer, recipient, alert, updated_at)
    if fmt is FeedFormat.RSS:
        rss: bytes = feed.rss_str(pretty=True)
        return rss
    if fmt is not FeedFormat.ATOM:
        raise ValueError(f"not a feed of entries: {fmt.name}")
    atom: bytes = feed.atom_str(pretty=True)
    return atom


def _entry(
    feed: FeedGenerator,
    renderer: Renderer,
    recipient: Recipient,
    alert: Alert,
    updated_at: datetime,
) -> None:
    [channel] = feed_channels()
    # The feed channel's layout is one message per alert; "days left" dates from the feed's time.
    [outgoing] = renderer.render(channel, recipient, [alert], now=updated_at)
    item = alert.event.item
    entry = feed.add_entry()
    # Atom's <id> and RSS's <guid isPermaLink="false"> alike.
    entry.guid(entry_id(alert.event), permalink=False)
    entry.title(outgoing.message.subject)
    entry.content(outgoing.message.html, type="html")
    entry.updated(alert.created_at)
    # An update is published when it was seen: RSS readers sort by this date.
    first = alert.event.type is EventType.NEW and item.published_at
    entry.published(first or alert.created_at)
    if item.url:
        entry.link(href=item.url)
