"""Alerts → messages, with each channel's Jinja2 templates.

A template is looked up first as ``<channel>/<lang>/<name>`` then as
``<channel>/<name>``, in the configured templates directory and then in the
built-in one, so an admin may override one file for one language. Values are
formatted by ``agent.views``; templates only lay them out. Telegram messages
stay within the channel's size limit by splitting between items and, for one
oversized item, by shortening its text before it is escaped, so no tag is cut.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import css_inline
from feedgen.feed import FeedGenerator
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from agent import i18n
from agent.errors import RuleError
from agent.models import Event
from agent.rules import load_node
from agent.rules.explain import Scope, scope_of
from agent.views import ItemView, Reader, shorten, view
from notifiers.base import Message

logger = logging.getLogger(__name__)

#: The templates shipped with the service, the fallback for every lookup.
BUILTIN_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"

#: Telegram's limit on one message's text.
TELEGRAM_MAX_LENGTH = 4096

#: Up to this many alerts go to Telegram as separate messages; more become a digest.
TELEGRAM_SEPARATE_UP_TO = 3


@dataclass(frozen=True)
class Alert:
    """One matched event waiting to be sent."""

    delivery_id: int
    event: Event
    #: Why it matched (``agent.rules.Reason.to_dict()``s); may be empty.
    reasons: list[dict[str, Any]]
    created_at: datetime
    #: The delivery's random ``message_token``, which e-mail Message-IDs are made of.
    message_token: str | None = None


@dataclass(frozen=True)
class Recipient:
    """Who a message goes to, and the links its footer carries."""

    subscription_name: str
    #: E-mail address, Telegram chat id or feed token.
    address: str
    language: str
    feed_url: str
    unsubscribe_url: str | None
    manage_url: str | None = None
    #: The subscription's compiled rule (``Subscription.compiled``), so the "why"
    #: line can leave out what every alert of it meets; None says everything.
    rule: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outgoing:
    """A rendered message and the deliveries it carries (marked sent when accepted)."""

    message: Message
    delivery_ids: tuple[int, ...]


class Renderer:
    """Turns alerts into channel messages and feeds, in the recipient's language."""

    def __init__(
        self,
        templates_dir: Path,
        *,
        site_name: str = "Smart Agent",
        mail_domain: str = "smart-agent.invalid",
        timezone: str = "Asia/Jerusalem",
    ) -> None:
        dirs = list(dict.fromkeys([Path(templates_dir), BUILTIN_TEMPLATES]))
        self.site_name = site_name
        self.mail_domain = mail_domain
        self.zone = ZoneInfo(timezone)
        self._env = Environment(
            loader=FileSystemLoader([str(folder) for folder in dirs]),
            autoescape=select_autoescape(["html", "xml"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["bdi"] = i18n.isolate
        self._catalogues = {lang: i18n.load_catalogue(lang, *dirs) for lang in i18n.LANGUAGES}

    def strings(self, language: str) -> i18n.Catalogue:
        """Return the UI strings of a language (the default language if unknown)."""
        return self._catalogues[i18n.language_of(language)]

    def render(
        self,
        channel: str,
        recipient: Recipient,
        alerts: Sequence[Alert],
        *,
        now: datetime | None = None,
    ) -> list[Outgoing]:
        """Render ``alerts`` for one recipient on ``channel``; ``now`` dates "days left"."""
        if not alerts:
            return []
        reader = self._reader(recipient, alerts, now)
        views = [view(alert, reader) for alert in alerts]
        if channel == "email":
            return [self._email(recipient, reader, views, [a.message_token for a in alerts])]
        if channel == "telegram":
            return self._telegram(recipient, reader, views)
        if channel == "rss":
            return [self._rss(recipient, reader, one) for one in views]
        raise ValueError(f"no templates for channel {channel!r}")

    def render_feed(
        self, recipient: Recipient, alerts: Sequence[Alert], *, updated_at: datetime
    ) -> bytes:
        """Render a subscription's Atom feed, newest alert first as given."""
        reader = self._reader(recipient, alerts, updated_at)
        feed = FeedGenerator()
        feed.id(recipient.feed_url)
        feed.title(
            str(reader.catalogue["feed_title"]).format(
                site=self.site_name, subscription=recipient.subscription_name
            )
        )
        feed.link(href=recipient.feed_url, rel="self")
        feed.language(reader.language)
        feed.updated(updated_at)
        # feedgen prepends entries, so add oldest first to keep the given order.
        for alert in reversed(alerts):
            self._feed_entry(feed, recipient, reader, alert)
        body: bytes = feed.atom_str(pretty=True)
        return body

    def _reader(
        self, recipient: Recipient, alerts: Sequence[Alert], now: datetime | None
    ) -> Reader:
        language = i18n.language_of(recipient.language)
        # Without a clock, date "days left" from when the newest alert was made.
        when = now or max((a.created_at for a in alerts), default=None)
        assert when is not None, "render needs alerts or now"
        return Reader(language, self._catalogues[language], self.zone, when, _scope(recipient))

    def _context(self, recipient: Recipient, reader: Reader) -> dict[str, Any]:
        """Return what every template sees but the items."""
        return {
            "t": reader.catalogue,
            "lang": reader.language,
            "dir": i18n.direction(reader.language),
            "site_name": self.site_name,
            "subscription": recipient.subscription_name,
            "feed_url": recipient.feed_url,
            "unsubscribe_url": recipient.unsubscribe_url,
            "manage_url": recipient.manage_url,
        }

    def _template(self, channel: str, name: str, context: dict[str, Any]) -> str:
        lang = context["lang"]
        names = [f"{channel}/{lang}/{name}", f"{channel}/{name}"]
        return self._env.select_template(names).render(context).strip()

    def _email(
        self,
        recipient: Recipient,
        reader: Reader,
        views: list[ItemView],
        tokens: list[str | None],
    ) -> Outgoing:
        context = self._context(recipient, reader) | {"items": views}
        subject = " ".join(self._template("email", "subject.txt", context).split())
        body_html = css_inline.inline(
            self._template("email", "body.html", context), load_remote_stylesheets=False
        )
        ids = tuple(one.delivery_id for one in views)
        headers = {"Auto-Submitted": "auto-generated", "Content-Language": reader.language}
        if recipient.unsubscribe_url:
            headers["List-Unsubscribe"] = f"<{recipient.unsubscribe_url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message = Message(
            to=recipient.address,
            subject=subject,
            text=self._template("email", "body.txt", context) + "\n",
            html=body_html,
            language=reader.language,
            message_id=self._message_id(tokens),
            headers=headers,
        )
        return Outgoing(message, ids)

    def _message_id(self, tokens: Sequence[str | None]) -> str | None:
        """The same Message-ID for the same deliveries, never for others.

        Made of the deliveries' random tokens, not their row ids, which a
        database may hand out again. Without tokens the channel picks a
        random one (alerts built outside the outbox).
        """
        if not all(tokens):
            return None
        joined = ",".join(sorted(token for token in tokens if token))
        return f"<sa-{hashlib.sha256(joined.encode()).hexdigest()[:32]}@{self.mail_domain}>"

    def _telegram(
        self, recipient: Recipient, reader: Reader, views: list[ItemView]
    ) -> list[Outgoing]:
        base = self._context(recipient, reader)
        if len(views) <= TELEGRAM_SEPARATE_UP_TO:
            groups = [[self._fit_one(base, one)] for one in views]
        else:
            groups = self._pack(base, views)
        outgoing = []
        for group in groups:
            body = self._telegram_html(base, group)
            message = Message(
                to=recipient.address,
                subject="",
                text=telegram_plain(body),
                html=body,
                language=reader.language,
            )
            outgoing.append(Outgoing(message, tuple(one.delivery_id for one in group)))
        return outgoing

    def _pack(self, base: dict[str, Any], views: list[ItemView]) -> list[list[ItemView]]:
        """Group items greedily into messages that fit, splitting only between items."""
        groups: list[list[ItemView]] = []
        current: list[ItemView] = []
        for one in views:
            if current and self._fits(base, [*current, one]):
                current.append(one)
                continue
            if current:
                groups.append(current)
            current = [self._fit_one(base, one)]
        groups.append(current)
        return groups

    def _fit_one(self, base: dict[str, Any], one: ItemView) -> ItemView:
        """Shorten one item's text until its message fits: description, then the rest."""

        def fits(candidate: ItemView) -> bool:
            return self._fits(base, [candidate])

        if fits(one):
            return one
        bare = replace(one, description="")
        if fits(bare):
            return _longest(fits, lambda n: replace(one, description=shorten(one.description, n)))
        bare = replace(bare, changes=(), reasons=())
        if fits(bare):
            return bare
        if fits(replace(bare, title="…")):
            return _longest(fits, lambda n: replace(bare, title=shorten(bare.title, n)))
        raise ValueError(f"the telegram template leaves no room within {TELEGRAM_MAX_LENGTH}")

    def _fits(self, base: dict[str, Any], views: list[ItemView]) -> bool:
        return len(self._telegram_html(base, views)) <= TELEGRAM_MAX_LENGTH

    def _telegram_html(self, base: dict[str, Any], views: list[ItemView]) -> str:
        text = self._template("telegram", "message.html", base | {"items": views})
        # Telegram knows only &lt; &gt; &amp; &quot; by name; Jinja writes quotes as numbers.
        text = text.replace("&#34;", "&quot;").replace("&#39;", "'")
        return re.sub(r"\n{3,}", "\n\n", text)

    def _rss(self, recipient: Recipient, reader: Reader, one: ItemView) -> Outgoing:
        context = self._context(recipient, reader) | {"items": [one], "item": one}
        title = " ".join(self._template("rss", "title.txt", context).split())
        content = self._template("rss", "content.html", context)
        message = Message(
            to=recipient.address, subject=title, text=title, html=content, language=reader.language
        )
        return Outgoing(message, (one.delivery_id,))

    def _feed_entry(
        self, feed: FeedGenerator, recipient: Recipient, reader: Reader, alert: Alert
    ) -> None:
        message = self._rss(recipient, reader, view(alert, reader)).message
        item = alert.event.item
        entry = feed.add_entry()
        key = f"{item.source}\x00{item.key}\x00{alert.event.dedup_key}"
        # Stable across renders, so readers never show an entry twice.
        entry.id("urn:smart-agent:event:" + hashlib.sha1(key.encode()).hexdigest())
        entry.title(message.subject)
        entry.content(message.html, type="html")
        entry.updated(alert.created_at)
        entry.published(item.published_at or alert.created_at)
        if item.url:
            entry.link(href=item.url)


def _scope(recipient: Recipient) -> Scope:
    """What the recipient's rule admits; a rule that no longer loads admits everything."""
    if not recipient.rule:
        return scope_of(None)
    try:
        return scope_of(load_node(recipient.rule))
    except RuleError as exc:
        # Only the "why" line is at stake: say more rather than lose the alert.
        logger.warning("subscription %r: %s", recipient.subscription_name, exc)
        return scope_of(None)


def telegram_plain(body: str) -> str:
    """Turn Telegram HTML into plain text: links become ``text (url)``, tags go."""
    linked = re.sub(r'<a href="([^"]*)">(.*?)</a>', r"\2 (\1)", body, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", "", linked))


def _longest(fits: Callable[[ItemView], bool], cut: Callable[[int], ItemView]) -> ItemView:
    """Return ``cut(n)`` for the largest ``n`` that fits; ``cut(0)`` must fit."""
    low, high = 0, TELEGRAM_MAX_LENGTH * 4
    while low < high:
        middle = (low + high + 1) // 2
        if fits(cut(middle)):
            low = middle
        else:
            high = middle - 1
    return cut(low)
