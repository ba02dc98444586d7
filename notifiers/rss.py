"""RSS: a pull channel, so sending is only bookkeeping.

The outbox marks a feed delivery sent once ``send`` returns; ``agent.web.feeds``
then serves the subscription's sent deliveries as Atom (``/feeds/<token>.xml``)
and RSS 2.0 (``.rss``), built by ``agent.feeds`` from this channel's templates,
and the deadlines of the items they matched as iCalendar (``.ics``, by
``agent.ical``). A channel whose ``address_field`` is ``None`` is a feed.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict

from notifiers.base import Batching, Layout, Message, Verification


class RssNotifier(BaseModel):
    """Publishes alerts in each subscription's feeds (``[notifiers.rss]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # One feed entry per alert, addressed by the subscription's own feed token.
    layout: ClassVar[Layout] = Layout(Batching.EACH, capped=False)
    address_field: ClassVar[str | None] = None
    address_option: ClassVar[str | None] = None
    how_to_enable: ClassVar[str] = "add a [notifiers.rss] table"
    # A feed's address is its own secret token: whoever holds the link reads it.
    verification: ClassVar[Verification] = Verification.NONE
    address_input: ClassVar[str | None] = None

    @classmethod
    def check_address(cls, address: str) -> str:
        """Feeds are addressed by their own token: nothing to check."""
        return address

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def send(self, message: Message) -> str | None:
        """Accept ``message`` for the feed; readers fetch it, so there is no receipt."""
        return None
