"""Adding, listing, removing and importing subscriptions.

A subscription file (TOML or JSON) holds a list under ``subscriptions``; each
entry has the rule fields of ``agent.rules.RuleSpec`` (``query``, ``kinds``,
``publishers``, ``amount_min``, ...) next to the delivery fields below. An
import is all or nothing, and importing the same name again updates it.
"""

from __future__ import annotations

import json
import secrets
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlmodel import Session, select

from agent.config import format_errors
from agent.errors import AgentError, RuleError
from agent.models import Delivery, Subscription
from agent.rules import RuleSpec, dump_node

Channel = Literal["email", "telegram", "rss"]


def _default_channels() -> list[Channel]:
    return ["rss"]


class SubscriptionInput(BaseModel):
    """A subscription as people write it: delivery fields plus a rule."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    channels: list[Channel] = Field(default_factory=_default_channels, min_length=1)
    email: str | None = None
    telegram_chat_id: str | None = None
    language: Literal["he", "ar", "en"] = "he"
    cadence: Literal["immediate", "daily", "weekly"] = "immediate"
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

    @model_validator(mode="after")
    def _addresses(self) -> SubscriptionInput:
        if "email" in self.channels and not self.email:
            raise ValueError("the email channel needs an 'email' address")
        if "telegram" in self.channels and not self.telegram_chat_id:
            raise ValueError("the telegram channel needs a 'telegram_chat_id'")
        return self


def save(session: Session, given: SubscriptionInput, *, now: datetime) -> Subscription:
    """Create or update the subscription named ``given.name``; compile its rule."""
    compiled = dump_node(given.rule.compile())
    sub = session.exec(select(Subscription).where(Subscription.name == given.name)).first()
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
    return session.exec(select(Subscription).where(Subscription.name == ref)).first()


def read_file(path: Path) -> list[SubscriptionInput]:
    """Parse a TOML or JSON subscription file; raise ``AgentError`` saying where it is wrong."""
    text = path.read_text(encoding="utf-8")
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise AgentError(f"{path}: cannot be parsed: {exc}") from exc
    entries = data.get("subscriptions", []) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise AgentError(f"{path}: 'subscriptions' must be a list")
    found = []
    for index, entry in enumerate(entries):
        where = f"{path}: subscriptions[{index}]"
        try:
            given = SubscriptionInput.model_validate(entry)
            given.rule.compile()
        except ValidationError as exc:
            raise AgentError(f"{where}:\n{format_errors(exc)}") from exc
        except RuleError as exc:
            raise AgentError(f"{where} ({entry.get('name', '?')}): {exc}") from exc
        found.append(given)
    return found


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
