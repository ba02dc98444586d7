"""The dispatcher: due outbox rows → rendered messages → channels.

Due rows are grouped per (subscription, channel), so what fell due together
(one poll's results, or a daily digest) becomes one message, split only where
the channel's size limit demands. Each message's rows are marked sent only
after its channel accepted it; see ``agent.outbox`` for the guarantees.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from agent import outbox
from agent.errors import DeliveryError, PermanentDeliveryError
from agent.links import Links
from agent.models import Delivery, StoredEvent, Subscription
from agent.rendering import Alert, Recipient, Renderer
from notifiers import Notifier

logger = logging.getLogger(__name__)


@dataclass
class DispatchResult:
    """Counts of what one dispatch run did, by delivery."""

    sent: int = 0
    retrying: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


async def dispatch(
    *,
    db: Engine,
    notifiers: Mapping[str, Notifier],
    renderer: Renderer,
    links: Links,
    now: datetime,
    max_attempts: int,
) -> DispatchResult:
    """Send every due delivery once; return what happened."""
    with Session(db, expire_on_commit=False) as session:
        claimed = outbox.claim(session, now=now)
        session.commit()
    groups: dict[tuple[int, str], list[outbox.Claimed]] = defaultdict(list)
    for item in claimed:
        groups[(item.delivery.subscription_id, item.delivery.channel)].append(item)
    run = _Run(db, notifiers, renderer, links, now, max_attempts)
    for (_, channel), group in groups.items():
        await run.send_group(channel, group)
    return run.result


@dataclass
class _Run:
    """One dispatch run: what it needs, and what it has done so far."""

    db: Engine
    notifiers: Mapping[str, Notifier]
    renderer: Renderer
    links: Links
    now: datetime
    max_attempts: int
    result: DispatchResult = field(default_factory=DispatchResult)

    async def send_group(self, channel: str, group: list[outbox.Claimed]) -> None:
        """Render one subscription's due alerts on one channel and send them."""
        sub = group[0].subscription
        alerts = [alert_for(c.delivery, c.event) for c in group]
        notifier = self.notifiers.get(channel)
        address = _address(sub, channel)
        if notifier is None or address is None:
            why = "channel not configured" if notifier is None else f"no {channel} address"
            self.fail([a.delivery_id for a in alerts], PermanentDeliveryError(why))
            return
        recipient = recipient_for(sub, address, self.links)
        for outgoing in self.renderer.render(channel, recipient, alerts, now=self.now):
            ids = list(outgoing.delivery_ids)
            try:
                receipt = await notifier.send(outgoing.message)
            except DeliveryError as exc:
                logger.warning("%s to %s failed: %s", channel, sub.name, exc)
                self.fail(ids, exc)
                continue
            with Session(self.db) as session:
                outbox.mark_sent(session, ids, now=self.now, receipt=receipt)
                session.commit()
            self.result.sent += len(ids)

    def fail(self, ids: list[int], error: DeliveryError) -> None:
        """Record a failed send: retry later, or dead."""
        with Session(self.db) as session:
            dead = outbox.mark_failed(
                session, ids, error, now=self.now, max_attempts=self.max_attempts
            )
            session.commit()
        self.result.dead += dead
        self.result.retrying += len(ids) - dead
        self.result.errors.append(str(error))


def alert_for(delivery: Delivery, event: StoredEvent) -> Alert:
    """The alert a stored delivery carries, ready for rendering."""
    assert delivery.id is not None
    return Alert(delivery.id, event.to_event(), delivery.reasons, event.created_at)


def recipient_for(sub: Subscription, address: str, links: Links) -> Recipient:
    """Who a subscription's messages go to, with its links."""
    return Recipient(
        subscription_name=sub.name,
        address=address,
        language=sub.language,
        feed_url=links.feed_url(sub),
        unsubscribe_url=links.unsubscribe_url(sub),
    )


def _address(sub: Subscription, channel: str) -> str | None:
    if channel == "email":
        return sub.email
    if channel == "telegram":
        return sub.telegram_chat_id
    return sub.feed_token
