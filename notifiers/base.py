"""The contract every channel keeps.

Notifiers only move messages: ``agent.rendering`` turns events into a
``Message`` with the channel's templates; a notifier delivers it and returns
only when the channel accepted it, or raises a ``DeliveryError``
(``RateLimited``, ``PermanentDeliveryError``) saying why not.

A channel is one module: its notifier class says, in class attributes, how
its messages are cut (``layout``), which subscription field holds its address
(``address_field``) and how to check one (``check_address``), and how a
subscriber who signs up on the web proves the address is theirs
(``verification``); the rest of the agent reads those and never names a channel.

To add a channel: write ``notifiers/<channel>.py`` with a ``<Channel>Notifier``
model (its fields are the ``[notifiers.<channel>]`` config keys, its class
attributes those of ``Notifier`` below), add a field to ``Notifiers`` in
``notifiers/__init__.py``, and add ``templates/<channel>/`` (any of
``subject.txt``, ``body.txt``, ``body.html``).

A channel that also listens (the Telegram bot) defines ``background`` (a task
``serve`` runs for as long as it serves) and/or ``routes`` (HTTP routes it
mounts, such as a webhook); both get a ``ServiceContext``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from starlette.routing import BaseRoute

    from agent.links import Links

logger = logging.getLogger(__name__)


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
    #: Immediate alerts count against the hourly flood cap (``agent.flood``); a feed
    #: is read when its reader wants, so it is never capped.
    capped: bool = True


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
    #: The subscription's stable list identity, ``<public id>.<mail domain>`` (e-mail List-Id).
    list_id: str | None = None
    #: Extra channel headers, such as ``List-Unsubscribe``.
    headers: Mapping[str, str] = field(default_factory=dict)


class Verification(StrEnum):
    """How a subscription made on the web proves its channel's address is its subscriber's."""

    #: A confirmation message goes to the typed address; its link turns the subscription on.
    MESSAGE = "message"
    #: Nothing is typed: the chat connects itself through a link (a bot's deep link).
    CONNECT = "connect"
    #: Nothing to prove: a feed is read by whoever holds its secret address.
    NONE = "none"


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
    #: How a subscriber on the web proves the address is theirs (double opt-in).
    verification: ClassVar[Verification]
    #: How a web form asks for the address: the HTML input type and autocomplete
    #: token (``email``); ``None``: the address is never typed on the web.
    address_input: ClassVar[str | None]

    @classmethod
    def check_address(cls, address: str) -> str:
        """Return the address normalised, or raise ``ValueError`` saying what is wrong."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def send(self, message: Message) -> str | None:
        """Deliver ``message``; return the channel's receipt (message id), if any."""
        ...


@dataclass(frozen=True)
class ServiceContext:
    """What a channel's background task and routes may use of the running service."""

    db: Engine
    links: Links
    #: The UI strings of a language (``Renderer.strings``).
    strings: Callable[[str], Mapping[str, Any]]
    clock: Callable[[], datetime]


@runtime_checkable
class SelfConnecting(Protocol):
    """A channel whose chats connect themselves by opening a link (``Verification.CONNECT``)."""

    def connect_links(self, token: str) -> dict[str, str]:
        """The links that connect a chat with ``token`` (``/start``), by kind of chat."""
        ...


@runtime_checkable
class Background(Protocol):
    """A channel with a task of its own (polling for updates) while ``serve`` runs."""

    async def background(self, context: ServiceContext) -> None:
        """Run until cancelled."""
        ...


@runtime_checkable
class Routed(Protocol):
    """A channel that answers HTTP requests on the service's server (a webhook)."""

    def routes(self, context: ServiceContext) -> Sequence[BaseRoute]:
        """The routes to mount."""
        ...


def channel_routes(channels: Iterable[object], context: ServiceContext) -> list[BaseRoute]:
    """The HTTP routes of every channel that has some."""
    return [route for c in channels if isinstance(c, Routed) for route in c.routes(context)]


def start_background(
    channels: Iterable[object], context: ServiceContext
) -> list[asyncio.Task[None]]:
    """Start the background task of every channel that has one."""
    return [
        asyncio.create_task(c.background(context)) for c in channels if isinstance(c, Background)
    ]


async def stop_background(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel the tasks and wait for them; log any that had failed."""
    for task in tasks:
        task.cancel()
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, Exception):
            logger.error("a channel's background task failed: %r", outcome)
