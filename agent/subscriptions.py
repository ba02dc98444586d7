"""Adding, listing, removing and importing subscriptions.

A subscription file (TOML or JSON) holds a list under ``subscriptions``; each
entry has the rule fields of ``agent.rules.RuleSpec`` (``query``, ``kinds``,
``publishers``, ``amount_min``, ...) next to the delivery fields below, and must
name its ``channels``. An import is all or nothing, and importing the same name
again updates it. Every entry is checked against the configured channels, so a
subscription never waits on a channel that cannot send.
"""

from __future__ import annotations

import json
import secrets
import tomllib
import unicodedata
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlmodel import Session, select

from agent.config import format_errors
from agent.errors import AgentError
from agent.models import Delivery, Subscription
from agent.rules import RuleSpec, dump_node

Channel = Literal["email", "telegram", "rss"]
Language = Literal["he", "ar", "en"]
Cadence = Literal["immediate", "daily", "weekly"]
#: The closed sets above as tuples, for help texts and click choices.
CHANNELS: tuple[str, ...] = get_args(Channel)
LANGUAGES: tuple[str, ...] = get_args(Language)
CADENCES: tuple[str, ...] = get_args(Cadence)

#: Names are shown in every message and page: long enough for a team's label.
MAX_NAME_LENGTH = 200

#: How to turn on a channel that is off by default.
_HOW_TO_CONFIGURE = {
    "telegram": "set the bot token in SMART_AGENT_NOTIFIERS__TELEGRAM__TOKEN "
    "(see README, Channels: telegram)",
}


def _default_channels() -> list[Channel]:
    return ["rss"]


class SubscriptionInput(BaseModel):
    """A subscription as people write it: delivery fields plus a rule."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    channels: list[Channel] = Field(default_factory=_default_channels, min_length=1)
    email: str | None = None
    #: A chat id (``-1001234567890``) or a public channel's ``@username``.
    telegram_chat_id: str | None = Field(default=None, pattern=r"^(-?\d{1,20}|@\w{5,32})$")
    language: Language = "he"
    cadence: Cadence = "immediate"
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
        return {**rest, "rule": rule}

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        # Names go into subjects, pages and headers: no control characters there.
        if any(unicodedata.category(char) == "Cc" for char in value):
            raise ValueError("must not contain control characters or line breaks")
        return value.strip()

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            # Syntax only: deliverability would need DNS, and the agent may run offline.
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _addresses(self) -> SubscriptionInput:
        if "email" in self.channels and not self.email:
            raise ValueError("the email channel needs an 'email' address")
        if "telegram" in self.channels and not self.telegram_chat_id:
            raise ValueError("the telegram channel needs a 'telegram_chat_id'")
        return self


def check_channels(given: SubscriptionInput, available: Collection[str]) -> None:
    """Refuse a subscription naming a channel the configuration does not set up."""
    for channel in given.channels:
        if channel not in available:
            how = _HOW_TO_CONFIGURE.get(channel, f"add a [notifiers.{channel}] table")
            raise AgentError(f"the {channel} channel is not configured; to use it, {how}")


def by_name(session: Session, name: str) -> Subscription | None:
    """The subscription called exactly ``name``, if any."""
    return session.exec(select(Subscription).where(Subscription.name == name)).first()


def save(session: Session, given: SubscriptionInput, *, now: datetime) -> Subscription:
    """Create or update the subscription named ``given.name``; compile its rule."""
    compiled = dump_node(given.rule.compile())
    sub = by_name(session, given.name)
    if sub is None:
        sub = Subscription(name=given.name, feed_token=secrets.token_urlsafe(24), created_at=now)
    sub.rule = given.rule.model_dump(mode="json", exclude_defaults=True)
    sub.compiled = compiled
    sub.channels = list(given.channels)
    sub.email = given.email
    sub.telegram_chat_id = given.telegram_chat_id
    sub.language = given.language
    sub.cadence = given.cadence
    sub.active = True
    sub.updated_at = now
    session.add(sub)
    session.flush()
    return sub


def find(session: Session, ref: str) -> Subscription | None:
    """Find a subscription by id or by name."""
    if ref.isdigit() and (sub := session.get(Subscription, int(ref))) is not None:
        return sub
    return by_name(session, ref)


def read_file(path: Path, *, available: Collection[str]) -> list[SubscriptionInput]:
    """Parse and check a TOML or JSON subscription file; raise ``AgentError`` naming the entry.

    ``available`` are the configured channels; every entry must name its own.
    """
    text = path.read_text(encoding="utf-8")
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise AgentError(f"{path}: cannot be parsed: {exc}") from exc
    except RecursionError as exc:
        raise AgentError(f"{path}: cannot be parsed: nested too deeply") from exc
    entries = data.get("subscriptions", []) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise AgentError(f"{path}: 'subscriptions' must be a list")
    found: dict[str, SubscriptionInput] = {}
    for index, entry in enumerate(entries):
        given = _entry(entry, f"{path}: subscriptions[{index}]", available)
        if given.name in found:
            raise AgentError(
                f"{path}: subscriptions[{index}]: the name {given.name!r} is used twice"
            )
        found[given.name] = given
    return list(found.values())


def _entry(entry: Any, where: str, available: Collection[str]) -> SubscriptionInput:
    name = entry.get("name", "?") if isinstance(entry, dict) else "?"
    if isinstance(entry, dict) and "channels" not in entry:
        raise AgentError(
            f"{where} ({name}): 'channels' is missing: list one or more of {', '.join(CHANNELS)}"
        )
    try:
        given = SubscriptionInput.model_validate(entry)
        given.rule.compile()
        check_channels(given, available)
    except ValidationError as exc:
        raise AgentError(f"{where} ({name}):\n{format_errors(exc)}") from exc
    except AgentError as exc:
        raise AgentError(f"{where} ({name}): {exc}") from exc
    return given


def describe(sub: Subscription, *, feed_url: str) -> dict[str, Any]:
    """A subscription as JSON for ``subscriptions list --json``."""
    return {
        "id": sub.id,
        "name": sub.name,
        "active": sub.active,
        "channels": sub.channels,
        "email": sub.email,
        "telegram_chat_id": sub.telegram_chat_id,
        "language": sub.language,
        "cadence": sub.cadence,
        "rule": sub.rule,
        "feed_url": feed_url,
        "created_at": sub.created_at.isoformat(),
    }


def delete(session: Session, sub: Subscription) -> None:
    """Delete a subscription with its deliveries (sent ones included)."""
    for delivery in session.exec(select(Delivery).where(Delivery.subscription_id == sub.id)):
        session.delete(delivery)
    session.delete(sub)
