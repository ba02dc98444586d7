"""The contract every channel keeps.

Notifiers only move messages: ``agent.rendering`` turns events into a
``Message`` with the channel's templates; a notifier delivers it and returns
only when the channel accepted it, or raises a ``DeliveryError``
(``RateLimited``, ``PermanentDeliveryError``) saying why not.

A channel is one module: its notifier class says, in class attributes, how
its messages are cut (``layout``), which subscription field holds its address
(``address_field``) and how to check one (``check_address``); the rest of the
agent reads those and never names a channel.

To add a channel: write ``notifiers/<channel>.py`` with a ``<Channel>Notifier``
model (its fields are the ``[notifiers.<channel>]`` config keys, its class
attributes those of ``Notifier`` below), add a field to ``Notifiers`` in
``notifiers/__init__.py``, and add ``templates/<channel>/`` (any of
``subject.txt``, ``body.txt``, ``body.html``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Protocol, Self


class Batching(StrEnum):
    """How one recipient's due alerts become messages on a channel."""

    #: Every due alert in one message (an e-mail, a digest).
    ONE = "one"
    #: One message per alert (a feed entry).
    EACH = "each"
    #: Up to ``Layout.separate_up_to`` alerts alone, more packed within ``max_length``.
    FIT = "fit"


@dataclass(frozen=True)
class Layout:
    """How the renderer cuts a channel's alerts into messages."""

    batching: Batching = Batching.ONE
    #: The most characters one message's body may have; splits happen between items.
    max_length: int | None = None
    #: With ``FIT``: this many alerts or fewer go out one message each.
    separate_up_to: int = 0
    #: Inline the HTML body's ``<style>`` into ``style`` attributes (e-mail clients).
    inline_css: bool = False


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
    #: The subscription's signed one-click unsubscribe and manage links, if any.
    unsubscribe_url: str | None = None
    manage_url: str | None = None
    #: Extra channel headers, such as ``List-Unsubscribe``.
    headers: Mapping[str, str] = field(default_factory=dict)


class Notifier(Protocol):
    """A channel opened once per process; ``send`` returns only when accepted."""

    #: How the renderer cuts alerts into this channel's messages.
    layout: ClassVar[Layout]
    #: The subscription input field with this channel's address (``None``: a feed,
    #: addressed by the subscription's own feed token).
    address_field: ClassVar[str | None]
    #: The command-line option for that address (``--<option> VALUE``).
    address_option: ClassVar[str | None]
    #: How to turn the channel on, for the error when it is not configured.
    how_to_enable: ClassVar[str]

    @classmethod
    def check_address(cls, address: str) -> str:
        """Return the address normalised, or raise ``ValueError`` saying what is wrong."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def send(self, message: Message) -> str | None:
        """Deliver ``message``; return the channel's receipt (message id), if any."""
        ...
