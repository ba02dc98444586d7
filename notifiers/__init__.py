"""Notifiers: one module per channel, and the registry that names them.

``Notifiers`` is the registry: each field is a channel, named as in
``[notifiers.<channel>]`` and in a subscription's ``channels`` list.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ConfigDict

from notifiers.base import Batching, Layout, Message, Notifier
from notifiers.email import EmailNotifier
from notifiers.rss import RssNotifier
from notifiers.telegram import TelegramNotifier


class Notifiers(BaseModel):
    """The configured channels; a field's name is the channel's name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: EmailNotifier = EmailNotifier()
    telegram: TelegramNotifier | None = None
    rss: RssNotifier = RssNotifier()

    def enabled(self) -> dict[str, Notifier]:
        """Return the configured channels by name."""
        found = {name: getattr(self, name) for name in type(self).model_fields}
        return {name: notifier for name, notifier in found.items() if notifier is not None}


def _channel_class(annotation: Any) -> type[Notifier]:
    """The notifier class of a ``Notifiers`` field (``TelegramNotifier | None`` included)."""
    found: type[Notifier] = next(
        c for c in get_args(annotation) or (annotation,) if c is not type(None)
    )
    return found


#: Every channel the agent knows, by name, read off ``Notifiers``: the one registry.
CHANNELS: dict[str, type[Notifier]] = {
    name: _channel_class(field.annotation) for name, field in Notifiers.model_fields.items()
}


def channel(name: str) -> type[Notifier]:
    """The notifier class of channel ``name``; ``KeyError`` says it does not exist."""
    try:
        return CHANNELS[name]
    except KeyError:
        raise KeyError(f"no channel {name!r}: the channels are {', '.join(CHANNELS)}") from None


def feed_channels() -> list[str]:
    """The channels that publish feeds (addressed by a subscription's feed token)."""
    return [name for name, cls in CHANNELS.items() if cls.address_field is None]


__all__ = ["CHANNELS", "Batching", "Layout", "Message", "Notifier", "Notifiers", "channel"]
