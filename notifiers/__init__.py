"""Notifiers: one module per channel, and the registry that names them.

``Notifiers`` is the registry: each field is a channel, named as in
``[notifiers.<channel>]`` and in a subscription's ``channels`` list.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from notifiers.base import Message, Notifier
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


__all__ = ["Message", "Notifier", "Notifiers"]
