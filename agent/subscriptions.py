"""Subscriptions: what people ask for (``SubscriptionInput``), and saving, finding,
confirming, pausing, connecting and deleting them.

The same input comes from the CLI, subscription files (``agent.subscription_files``),
the web pages and the API, so every way in checks the same things. Every entry
is checked against the configured channels, so a subscription never waits on a
channel that cannot send.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Collection
from datetime import datetime
from typing import Any, Literal, get_args
from zoneinfo import available_timezones

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from sqlmodel import Session, col, select

import notifiers
from agent.errors import AgentError
from agent.models import Delivery, Subscription, new_secret
from agent.rules import RuleSpec, dump_node
from agent.schedule import Cadence, parse_quiet_hours

Language = Literal["he", "ar", "en"]
#: The closed sets, as tuples for help texts and click choices.
CHANNELS: tuple[str, ...] = tuple(notifiers.CHANNELS)
LANGUAGES: tuple[str, ...] = get_args(Language)
CADENCES: tuple[str, ...] = tuple(cadence.value for cadence in Cadence)
#: The input field of each addressed channel's address (``email``, ...), by channel.
ADDRESS_FIELDS: dict[str, str] = {
    name: field for name, cls in notifiers.CHANNELS.items() if (field := cls.address_field)
}

#: Names are shown in every message and page: long enough for a team's label.
MAX_NAME_LENGTH = 200
#: No address of any channel is longer than this.
MAX_ADDRESS_LENGTH = 320


def _default_channels() -> list[str]:
    return notifiers.feed_channels()[:1]


class SubscriptionInput(BaseModel):
    """A subscription as people write it: delivery fields plus a rule."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    channels: list[str] = Field(default_factory=_default_channels, min_length=1)
    #: Each addressed channel's address, by channel; written in files and on the
    #: command line under the channel's own field name (``email = ...``).
    addresses: dict[str, str] = Field(default_factory=dict)
    language: Language = "he"
    cadence: Cadence = Cadence.IMMEDIATE
    #: A different cadence on some channels: ``{telegram = "immediate"}``.
    cadences: dict[str, Cadence] = Field(default_factory=dict)
    #: The subscriber's time zone and digest hour; unset takes the service's defaults.
    timezone: str | None = None
    digest_hour: int | None = Field(default=None, ge=0, le=23)
    #: ``22-07``: immediate alerts wait out these local hours.
    quiet_hours: str | None = None
    rule: RuleSpec = Field(default_factory=RuleSpec)

    @model_validator(mode="before")
    @classmethod
    def _gather_rule(cls, data: Any) -> Any:
        # Rule fields sit at the top level in files and on the command line.
        if not isinstance(data, dict) or "rule" in data:
            return data
        rule_keys = set(RuleSpec.model_fields)
        rule = {k: v for k, v in data.items() if k in rule_keys}
        rest = {k: v for k, v in data.items() if k not in rule_keys}
        return {**_gather_addresses(rest), "rule": rule}

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        # Names go into subjects, pages and headers: no control characters there.
        if any(unicodedata.category(char) == "Cc" for char in value):
            raise ValueError("must not contain control characters or line breaks")
        return value.strip()

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in notifiers.CHANNELS]
        if unknown:
            raise ValueError(f"no channel {unknown[0]!r}: the channels are {', '.join(CHANNELS)}")
        return list(dict.fromkeys(value))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in available_timezones():
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Jerusalem)")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str | None) -> str | None:
        if value is not None:
            parse_quiet_hours(value)
        return value

    @model_validator(mode="after")
    def _channel_cadences(self) -> SubscriptionInput:
        if unknown := [name for name in self.cadences if name not in self.channels]:
            raise ValueError(f"cadences: {unknown[0]!r} is not one of this subscription's channels")
        return self

    @model_validator(mode="after")
    def _addresses(self) -> SubscriptionInput:
        checked = {}
        for name in self.channels:
            field = ADDRESS_FIELDS.get(name)
            if field is None:
                continue
            address = self.addresses.get(name)
            if not address:
                article = "an" if field[:1] in "aeiou" else "a"
                raise ValueError(f"the {name} channel needs {article} '{field}'")
            if len(address) > MAX_ADDRESS_LENGTH:
                raise ValueError(f"{field}: at most {MAX_ADDRESS_LENGTH} characters")
            try:
                checked[name] = notifiers.channel(name).check_address(address)
            except ValueError as exc:
                raise ValueError(f"{field}: {exc}") from exc
        self.addresses = checked
        return self


def _gather_addresses(data: dict[str, Any]) -> dict[str, Any]:
    """Move each channel's address field (``email = ...``) into ``addresses``."""
    addresses = dict(data.get("addresses") or {})
    rest = {k: v for k, v in data.items() if k != "addresses"}
    for name, field in ADDRESS_FIELDS.items():
        value = rest.pop(field, None)
        if value is not None:
            addresses[name] = value
    return {**rest, "addresses": addresses}


def check_channels(given: SubscriptionInput, available: Collection[str]) -> None:
    """Refuse a subscription naming a channel the configuration does not set up."""
    for channel in given.channels:
        if channel not in available:
            how = notifiers.channel(channel).how_to_enable
            raise AgentError(f"the {channel} channel is not configured; to use it, {how}")


def by_name(session: Session, name: str) -> Subscription | None:
    """The subscription called exactly ``name``, if any."""
    return session.exec(select(Subscription).where(Subscription.name == name)).first()


def save(
    session: Session,
    given: SubscriptionInput,
    *,
    now: datetime,
    confirmed: bool = True,
    organisation_id: int | None = None,
) -> Subscription:
    """Create or update the subscription named ``given.name``; compile its rule.

    ``confirmed=False`` (a subscription made on the web for an address that has
    not confirmed yet) keeps a new one inactive and awaiting confirmation;
    ``confirm`` turns it on. ``organisation_id`` shares it with an organisation.
    """
    compiled = dump_node(given.rule.compile())
    sub = by_name(session, given.name)
    if sub is None:
        sub = Subscription(name=given.name, feed_token=secrets.token_urlsafe(24), created_at=now)
    sub.rule = given.rule.model_dump(mode="json", exclude_defaults=True)
    sub.compiled = compiled
    sub.channels = list(given.channels)
    sub.addresses = dict(given.addresses)
    sub.language = given.language
    sub.cadence = given.cadence
    sub.cadences = {name: cadence.value for name, cadence in given.cadences.items()}
    sub.timezone, sub.digest_hour = given.timezone, given.digest_hour
    sub.quiet_hours = given.quiet_hours
    if organisation_id is not None:
        sub.organisation_id = organisation_id
    if confirmed:
        sub.active, sub.awaiting_confirmation = True, None
    elif sub.id is None:
        sub.active, sub.awaiting_confirmation = False, True
    sub.updated_at = now
    session.add(sub)
    session.flush()
    return sub


def confirm(session: Session, sub: Subscription, *, now: datetime) -> None:
    """The address confirmed (double opt-in): the subscription starts matching.

    Its links get a new secret: any link handed out before (to whoever typed
    the address) stops working, and only the owner's new ones reach it and the
    address's other subscriptions.
    """
    sub.link_secret = new_secret()
    sub.awaiting_confirmation = None
    sub.active = True
    sub.updated_at = now
    session.add(sub)


def purge_unconfirmed(session: Session, *, made_before: datetime) -> int:
    """Delete subscriptions still awaiting confirmation that were made before ``made_before``.

    Called with the confirmation link's lifetime: past it, nobody can confirm
    them any more, and an address someone typed should not be kept for nothing.
    """
    stale = session.exec(
        select(Subscription).where(
            col(Subscription.awaiting_confirmation).is_(True),
            col(Subscription.created_at) < made_before,
        )
    ).all()
    for sub in stale:
        delete(session, sub)
    return len(stale)


def set_active(session: Session, sub: Subscription, active: bool, *, now: datetime) -> None:
    """Pause (``False``) or resume a subscription; a paused one matches nothing."""
    sub.active = active
    sub.updated_at = now
    session.add(sub)


def unique_name(session: Session, wanted: str) -> str:
    """``wanted``, or ``wanted (2)``, ``(3)``...: the first name no subscription has."""
    base = " ".join(wanted.split())[: MAX_NAME_LENGTH - 8] or "subscription"
    name, number = base, 1
    while by_name(session, name) is not None:
        number += 1
        name = f"{base} ({number})"
    return name


def by_public_id(session: Session, public_id: str) -> Subscription | None:
    """The subscription with this public id (what signed links name), if any."""
    return session.exec(select(Subscription).where(Subscription.public_id == public_id)).first()


def to_input(sub: Subscription) -> SubscriptionInput:
    """A stored subscription back as input, to edit some fields and ``save`` again."""
    return SubscriptionInput.model_validate(
        {
            "name": sub.name,
            "channels": sub.channels,
            "addresses": sub.addresses or {},
            "language": sub.language,
            "cadence": sub.cadence,
            "cadences": sub.cadences or {},
            "timezone": sub.timezone,
            "digest_hour": sub.digest_hour,
            "quiet_hours": sub.quiet_hours,
            "rule": sub.rule,
        }
    )


def find(session: Session, ref: str) -> Subscription | None:
    """Find a subscription by id or by name."""
    if ref.isdigit() and (sub := session.get(Subscription, int(ref))) is not None:
        return sub
    return by_name(session, ref)


def describe(sub: Subscription, *, feed_url: str) -> dict[str, Any]:
    """A subscription as JSON for ``subscriptions list --json``."""
    return {
        "id": sub.id,
        "name": sub.name,
        "active": sub.active,
        "channels": sub.channels,
        **{field: (sub.addresses or {}).get(name) for name, field in ADDRESS_FIELDS.items()},
        "language": sub.language,
        "cadence": sub.cadence,
        "cadences": sub.cadences or {},
        "timezone": sub.timezone,
        "digest_hour": sub.digest_hour,
        "quiet_hours": sub.quiet_hours,
        "rule": sub.rule,
        "feed_url": feed_url,
        "created_at": sub.created_at.isoformat(),
    }


def delete(session: Session, sub: Subscription) -> None:
    """Delete a subscription with its deliveries (sent ones included)."""
    for delivery in session.exec(select(Delivery).where(Delivery.subscription_id == sub.id)):
        session.delete(delivery)
    session.delete(sub)


def connect(
    session: Session, sub: Subscription, channel: str, address: str, *, now: datetime
) -> None:
    """Send ``sub``'s alerts on ``channel`` to ``address`` (a chat that said ``/start``).

    An unsubscribed subscription comes back on this channel only. An
    organisation's shared subscription keeps its other recipients and stays as
    its editors left it (paused or not): a group joining is not their decision.
    """
    if not sub.active and sub.organisation_id is None:
        sub.channels, sub.active = [], True
    sub.addresses = {**(sub.addresses or {}), channel: address}
    if channel not in sub.channels:
        sub.channels = [*sub.channels, channel]
    sub.updated_at = now
    session.add(sub)


def disconnect(session: Session, sub: Subscription, channel: str, *, now: datetime) -> None:
    """Stop ``sub``'s alerts on ``channel``; with no channel left it is inactive."""
    sub.channels = [name for name in sub.channels if name != channel]
    sub.addresses = {k: v for k, v in (sub.addresses or {}).items() if k != channel}
    sub.cadences = {k: v for k, v in (sub.cadences or {}).items() if k != channel}
    sub.active = bool(sub.channels)
    sub.updated_at = now
    session.add(sub)
