"""The contract every channel keeps.

Notifiers only move messages: ``agent.rendering`` turns events into a
``Message`` with the channel's templates; a notifier delivers it and returns
only when the channel accepted it, or raises a ``DeliveryError``
(``RateLimited``, ``PermanentDeliveryError``) saying why not.

To add a channel: write ``notifiers/<channel>.py`` with a ``<Channel>Notifier``
model (its fields are the ``[notifiers.<channel>]`` config keys), add a field to
``Notifiers`` in ``notifiers/__init__.py``, and add ``templates/<channel>/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, Self


@dataclass(frozen=True)
class Message:
    """One message ready for one recipient on one channel."""

    #: An e-mail address, a Telegram chat id, or a feed token.
    to: str
    subject: str
    text: str
    html: str | None = None
    #: BCP 47 language of the content (``he``, ``ar``, ``en``).
    language: str = "he"
    #: Stable identity, reused on retries (the e-mail Message-ID).
    message_id: str | None = None
    #: Extra channel headers, such as ``List-Unsubscribe``.
    headers: Mapping[str, str] = field(default_factory=dict)


class Notifier(Protocol):
    """A channel opened once per process; ``send`` returns only when accepted."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def send(self, message: Message) -> str | None:
        """Deliver ``message``; return the channel's receipt (message id), if any."""
        ...
