"""A subscription as the manage pages show it: its rule in words, channels, feeds, state."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import notifiers
from agent import i18n
from agent.feeds import FeedFormat
from agent.links import Links
from agent.models import Subscription
from agent.rules import RuleSpec, describe, load_node
from agent.subscriptions import ADDRESS_FIELDS
from agent.web.manage_access import Status, Subscriber, status_of

#: Rule fields the shared rule strings (``t.rule``) have no label for.
OWN_LABELS = ("sources", "statuses", "follow")


@dataclass(frozen=True)
class ChannelChoice:
    """A channel the subscriber may turn on or off here, and the address it would use."""

    name: str
    address: str
    on: bool


@dataclass(frozen=True)
class SubscriptionView:
    """What a manage page shows of one subscription."""

    public_id: str
    name: str
    status: Status
    #: The rule's filled fields in words: (label, value).
    rule: list[tuple[str, str]]
    #: Each channel with its address ("" for a feed channel).
    channels: list[tuple[str, str]]
    cadence: str
    #: Channels with a cadence of their own.
    cadences: dict[str, str]
    language: str
    #: Feed links by format name: ``atom``, ``rss``, ``ics``.
    feeds: dict[str, str]
    #: Whether a feed channel is on (feeds fill only then).
    feeding: bool


def view_of(
    sub: Subscription, links: Links, t: i18n.Catalogue, m: i18n.Catalogue, language: str
) -> SubscriptionView:
    """``sub`` as a manage page in ``language`` (strings ``t``, messages ``m``) shows it."""
    addresses = sub.addresses or {}
    return SubscriptionView(
        public_id=sub.public_id or "",
        name=sub.name,
        status=status_of(sub),
        rule=rule_rows(sub, t, m, language),
        channels=[(name, addresses.get(name, "")) for name in sub.channels],
        cadence=sub.cadence,
        cadences=dict(sub.cadences or {}),
        language=sub.language,
        feeds={
            "atom": links.feed_url(sub, FeedFormat.ATOM),
            "rss": links.rss_url(sub),
            "ics": links.calendar_url(sub),
        },
        feeding=any(name in notifiers.feed_channels() for name in sub.channels),
    )


def rule_rows(
    sub: Subscription, t: i18n.Catalogue, m: i18n.Catalogue, language: str
) -> list[tuple[str, str]]:
    """The rule's filled fields as (label, value) in ``language``."""
    spec = RuleSpec.model_validate(sub.rule or {})
    rows = []
    for field, value in spec.model_dump(exclude_defaults=True).items():
        label = t["manage"][f"rule_{field}"] if field in OWN_LABELS else t["rule"][field]
        rows.append((str(label), _value(field, value, t, m, language)))
    if not rows and sub.compiled:
        rows.append((str(t["manage"]["rule_query"]), describe(load_node(sub.compiled))))
    return rows


def _value(field: str, value: Any, t: i18n.Catalogue, m: i18n.Catalogue, language: str) -> str:
    """One rule field's value in words: kinds and updates by name, numbers formatted."""
    names: Mapping[str, Any] = {"kinds": m["kind"], "event_types": m["event"]}.get(field, {})
    if isinstance(value, list):
        return ", ".join(str(names.get(v, v)) for v in value)
    if isinstance(value, float):
        return i18n.number(value, language)
    if field == "change_direction":
        return str(t["rule"][f"direction_{value}"])
    return str(value)


def channel_choices(
    sub: Subscription, subscriber: Subscriber, configured: Collection[str]
) -> list[ChannelChoice]:
    """The configured channels ``sub`` may use without a new address to confirm.

    A feed needs no address; an addressed channel is offered with the address
    ``sub`` already has, or the one this subscriber's link was sent to.
    """
    known = dict(subscriber.own.addresses or {}) if not subscriber.own.awaiting_confirmation else {}
    known.update(sub.addresses or {})
    choices = []
    for name in notifiers.CHANNELS:
        if name not in configured:
            continue
        address = known.get(name, "") if name in ADDRESS_FIELDS else ""
        if name in ADDRESS_FIELDS and not address:
            continue
        choices.append(ChannelChoice(name, address, name in sub.channels))
    return choices
