"""Alerts → messages, with each channel's Jinja2 templates.

A template is looked up first as ``<channel>/<lang>/<name>`` then as
``<channel>/<name>``, in the configured templates directory and then in the
built-in one, so an admin may override one file for one language. Values are
formatted by ``agent.views``; templates only lay them out.

Each channel has any of ``subject.txt``, ``body.txt`` and ``body.html``, and
its notifier's ``layout`` says how alerts are cut into messages (``agent.layout``): all in one,
one each, or fitted within a size limit by splitting between items and, for
one oversized item, by shortening its text before it is escaped, so no tag is
cut. A notice, a message that is not an alert (the confirmation a subscription
made on the web asks for), has templates of its own under ``<channel>/<notice>/``.
Nothing here names a channel.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import css_inline
from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from agent import feeds, i18n
from agent.errors import RuleError
from agent.layout import Cutter, Plan
from agent.models import Event
from agent.rules import load_node
from agent.rules.explain import Scope, scope_of
from agent.views import ItemView, Reader, view
from notifiers import channel as channel_class
from notifiers.base import Layout, Message

logger = logging.getLogger(__name__)

#: The templates shipped with the service, the fallback for every lookup.
BUILTIN_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


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
    #: Held back by the hourly flood cap: a digest says how many it carries.
    rolled_over: bool = False


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
    #: The subscription's random public id, which names its list (e-mail ``List-Id``).
    public_id: str | None = None
    #: The message is a digest (a daily or weekly cadence): items go in sections.
    digest: bool = False
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
        #: Where admins' overrides are looked up first (``None``: only the built-in ones).
        self.overrides = dirs[0] if len(dirs) > 1 else None
        self.site_name = site_name
        self.mail_domain = mail_domain
        self.zone = ZoneInfo(timezone)
        # Sandboxed: an admin's override may lay out what it is given, nothing more.
        self._env = SandboxedEnvironment(
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
        layout = channel_class(channel).layout
        plan = Plan.of(alerts, layout, recipient, reader)
        views = [view(alert, reader) for alert in plan.shown]
        # Measured with the widest reference, so a message never outgrows its channel.
        context = self._context(recipient, reader) | {"reference": reference(_WIDEST_ID)}
        cut = Cutter(self, channel, layout, lambda group: context | plan.context(group, reader))
        return [
            Outgoing(
                self._message(channel, layout, recipient, reader, group, plan),
                plan.carried_by(group),
            )
            for group in cut.groups(views)
        ]

    def render_feed(
        self,
        recipient: Recipient,
        alerts: Sequence[Alert],
        *,
        updated_at: datetime,
        fmt: feeds.FeedFormat = feeds.FeedFormat.ATOM,
        links: feeds.FeedLinks | None = None,
    ) -> bytes:
        """Render a subscription's Atom or RSS feed, newest alert first (``agent.feeds``)."""
        return feeds.render(self, recipient, alerts, updated_at=updated_at, fmt=fmt, links=links)

    def render_notice(
        self, channel: str, notice: str, *, to: str, language: str, values: Mapping[str, Any]
    ) -> Message:
        """Render a message that is not an alert (``notice``: ``confirm``) for one address.

        Its templates are ``<channel>/<notice>/`` ``subject.txt``, ``body.txt``,
        ``body.html`` (overridden per language as ``<channel>/<lang>/<notice>/...``);
        they see ``t``, ``lang``, ``dir``, ``site_name`` and ``values``. A channel
        with no body for it raises ``TemplateNotFound``.
        """
        language = i18n.language_of(language)
        context = {
            "t": self._catalogues[language],
            "lang": language,
            "dir": i18n.direction(language),
            "site_name": self.site_name,
            **values,
        }
        subject = " ".join(self.optional(channel, f"{notice}/subject.txt", context).split())
        text = self.optional(channel, f"{notice}/body.txt", context)
        body = self.optional(channel, f"{notice}/body.html", context) or None
        if not text and body is None:
            raise TemplateNotFound(f"{channel}/{notice}/body.txt")
        if body is not None and channel_class(channel).layout.inline_css:
            body = css_inline.inline(body, load_remote_stylesheets=False)
        return Message(
            to=to, subject=subject, text=text + "\n" if text else "", html=body, language=language
        )

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
            "reference": "",
        }

    def _template(self, channel: str, name: str, context: dict[str, Any]) -> str:
        lang = context["lang"]
        names = [f"{channel}/{lang}/{name}", f"{channel}/{name}"]
        return self._env.select_template(names).render(context).strip()

    def _message(
        self,
        channel: str,
        layout: Layout,
        recipient: Recipient,
        reader: Reader,
        views: list[ItemView],
        plan: Plan,
    ) -> Message:
        message_id = self._message_id([plan.tokens[i] for i in plan.carried_by(views)])
        context = self._context(recipient, reader) | plan.context(views, reader)
        context["reference"] = reference(message_id)
        subject = " ".join(self.optional(channel, "subject.txt", context).split())
        text = self.optional(channel, "body.txt", context)
        body = self.optional(channel, "body.html", context) or None
        if body is not None and layout.inline_css:
            body = css_inline.inline(body, load_remote_stylesheets=False)
        return Message(
            to=recipient.address,
            subject=subject,
            text=text + "\n" if text else "",
            html=body,
            language=reader.language,
            message_id=message_id,
            unsubscribe_url=recipient.unsubscribe_url,
            manage_url=recipient.manage_url,
            list_id=f"{recipient.public_id}.{self.mail_domain}" if recipient.public_id else None,
        )

    def optional(self, channel: str, name: str, context: dict[str, Any]) -> str:
        """Render ``channel``'s template ``name``, or return "" if the channel has none."""
        try:
            text = self._template(channel, name, context)
        except TemplateNotFound:
            return ""
        if name.endswith(".html"):
            # Jinja escapes quotes as numeric references; some channels (Telegram)
            # know only &quot; by name, and every HTML reader knows it too.
            text = text.replace("&#34;", "&quot;").replace("&#39;", "'")
        return re.sub(r"\n{3,}", "\n\n", text)

    def _message_id(self, tokens: Sequence[str | None]) -> str | None:
        """The same Message-ID for the same deliveries, never for others.

        Made of the deliveries' random tokens, not their row ids, which a
        database may hand out again. Without tokens the channel picks a
        random one (alerts built outside the outbox).
        """
        if not tokens or not all(tokens):
            return None
        joined = ",".join(sorted(token for token in tokens if token))
        return f"<sa-{hashlib.sha256(joined.encode()).hexdigest()[:32]}@{self.mail_domain}>"


#: A Message-ID as ``_message_id`` makes them, for measuring.
_WIDEST_ID = "<sa-" + "0" * 32 + "@x>"


def reference(message_id: str | None) -> str:
    """A short mark of a message, the same on a resend: ``sa`` and 8 hex digits of its Message-ID.

    Channels without headers show it (Telegram, as a hashtag a chat can be
    searched by), so a message sent twice is recognisable as one. Empty for
    a message made outside the outbox.
    """
    found = re.match(r"<sa-([0-9a-f]{8})", message_id or "")
    return f"sa{found.group(1)}" if found else ""


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
