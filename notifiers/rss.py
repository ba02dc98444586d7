"""RSS: a pull channel, so sending is only bookkeeping.

The outbox marks an rss delivery sent once ``send`` returns; ``agent.web``
then serves the subscription's sent deliveries at ``/feeds/<token>.xml``,
rendered by ``agent.rendering.Renderer.render_feed``.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict

from notifiers.base import Message


class RssNotifier(BaseModel):
    """Publishes alerts in each subscription's Atom feed (``[notifiers.rss]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def send(self, message: Message) -> str | None:
        """Accept ``message`` for the feed; readers fetch it, so there is no receipt."""
        return None
