"""What an organisation's pages show of a shared subscription: rule, recipients, status, links."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import notifiers
from agent.models import Subscription
from agent.rules import describe, load_node
from agent.subscriptions import ADDRESS_FIELDS
from agent.web.site import Site
from notifiers.telegram import TelegramNotifier

#: A bot's deep link that adds it to a group and says ``/start <token>`` there
#: (Telegram's "Deep linking": ``startgroup``).
GROUP_LINK = "https://t.me/{bot}?startgroup={token}"


class Status(StrEnum):
    """Where a shared subscription stands (said in words next to its colour)."""

    ACTIVE = "active"
    PAUSED = "paused"


@dataclass(frozen=True)
class Recipient:
    """Where one channel of a subscription delivers: an address, or the feed's link."""

    channel: str
    address: str | None
    feed_url: str | None


@dataclass(frozen=True)
class SharedRow:
    """A shared subscription as the organisation's page lists it."""

    sub: Subscription
    #: The rule as a query (``agent.rules.describe``); empty for a rule with no clause.
    summary: str
    recipients: tuple[Recipient, ...]
    status: Status
    #: ``(channel, link)``: connect a group to the subscription (editors only).
    group_links: tuple[tuple[str, str], ...]


def rows(site: Site, subs: list[Subscription], *, editor: bool) -> list[SharedRow]:
    """The organisation's subscriptions as its page lists them."""
    return [
        SharedRow(
            sub,
            describe(load_node(sub.compiled)) if sub.compiled else "",
            tuple(_recipients(site, sub)),
            Status.ACTIVE if sub.active else Status.PAUSED,
            tuple(group_links(site, sub)) if editor else (),
        )
        for sub in subs
    ]


def channel_choices(site: Site) -> list[tuple[str, str | None]]:
    """The configured channels, each with its address field (``None``: a feed)."""
    return [
        (name, ADDRESS_FIELDS.get(name))
        for name in notifiers.CHANNELS
        if name in site.agent.notifiers
    ]


def group_links(site: Site, sub: Subscription) -> list[tuple[str, str]]:
    """Links that add the bot to a group and connect it to ``sub``, per channel that has a bot."""
    return [
        (name, GROUP_LINK.format(bot=notifier.username, token=site.links.telegram_start(sub)))
        for name, notifier in site.agent.notifiers.items()
        if isinstance(notifier, TelegramNotifier)
    ]


def _recipients(site: Site, sub: Subscription) -> list[Recipient]:
    addresses = sub.addresses or {}
    return [
        Recipient(
            name,
            addresses.get(name),
            None if name in ADDRESS_FIELDS else site.links.feed_url(sub),
        )
        for name in sub.channels
    ]
