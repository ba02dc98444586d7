"""The dispatcher: due outbox rows → rendered messages → channels.

Due rows are grouped per (subscription, channel), so what fell due together
(one poll's results, or a daily digest) becomes one message, split only where
the channel's size limit demands. Groups are claimed one at a time, just
before they are sent. Each message's rows are marked sent only after its
channel accepted it; see ``agent.outbox`` for the guarantees.

One bad row never stalls the others: anything a group raises besides a
``DeliveryError`` (an amount that cannot be formatted, an address a channel
rejects locally, an unwritable folder) is retried row by row, and only the
rows that fail again are failed, with the reason, towards ``dead``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
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
    clock: Callable[[], datetime],
    max_attempts: int,
    owner: str | None = None,
) -> DispatchResult:
    """Send every due delivery once; return what happened.

    ``owner`` names this run's leases (a random token by default).
    """
    run = _Run(db, notifiers, renderer, links, clock, max_attempts, owner or uuid.uuid4().hex)
    with Session(db) as session:
        groups = outbox.due_groups(session, now=clock())
    for group in groups:
        with Session(db, expire_on_commit=False) as session:
            claimed = outbox.claim(session, group, now=clock(), owner=run.owner)
            session.commit()
        if claimed:
            await run.send_group(group[1], claimed)
    return run.result


@dataclass
class _Run:
    """One dispatch run: what it needs, and what it has done so far."""

    db: Engine
    notifiers: Mapping[str, Notifier]
    renderer: Renderer
    links: Links
    clock: Callable[[], datetime]
    max_attempts: int
    owner: str
    result: DispatchResult = field(default_factory=DispatchResult)

    async def send_group(self, channel: str, group: list[outbox.Claimed]) -> None:
        """Send one subscription's claimed alerts on one channel; isolate a bad row."""
        done: set[int] = set()
        try:
            await self._send(channel, group, done)
        except Exception as exc:  # one bad row must not stall the others
            left = [c for c in group if c.delivery.id not in done]
            if len(left) == 1 and len(group) == 1:
                reason = f"cannot render or send: {type(exc).__name__}: {exc}"
                logger.error("%s to %s failed: %s", channel, group[0].subscription.name, reason)
                self.fail(
                    [i for c in left if (i := c.delivery.id) is not None], DeliveryError(reason)
                )
                return
            for claimed in left:
                await self.send_group(channel, [claimed])

    async def _send(self, channel: str, group: list[outbox.Claimed], done: set[int]) -> None:
        sub = group[0].subscription
        alerts = [alert_for(c.delivery, c.event) for c in group]
        notifier = self.notifiers.get(channel)
        address = _address(sub, channel)
        if notifier is None or address is None:
            why = "channel not configured" if notifier is None else f"no {channel} address"
            self.fail([a.delivery_id for a in alerts], PermanentDeliveryError(why))
            done.update(a.delivery_id for a in alerts)
            return
        recipient = recipient_for(sub, address, self.links)
        for outgoing in self.renderer.render(channel, recipient, alerts, now=self.clock()):
            ids = list(outgoing.delivery_ids)
            try:
                receipt = await notifier.send(outgoing.message)
            except DeliveryError as exc:
                logger.warning("%s to %s failed: %s", channel, sub.name, exc)
                self.fail(ids, exc)
            else:
                self.sent(ids, receipt)
            done.update(ids)

    def sent(self, ids: list[int], receipt: str | None) -> None:
        """Record an accepted message; rows another run owns by now are left to it."""
        with Session(self.db) as session:
            marked = outbox.mark_sent(
                session, ids, owner=self.owner, now=self.clock(), receipt=receipt
            )
            session.commit()
        if marked < len(ids):
            logger.warning(
                "%d rows were re-claimed by another run after their lease ended", len(ids) - marked
            )
        self.result.sent += marked

    def fail(self, ids: list[int], error: DeliveryError) -> None:
        """Record a failed send: retry later, or dead."""
        with Session(self.db) as session:
            dead = outbox.mark_failed(
                session,
                ids,
                error,
                owner=self.owner,
                now=self.clock(),
                max_attempts=self.max_attempts,
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
        rule=sub.compiled,
    )


def _address(sub: Subscription, channel: str) -> str | None:
    if channel == "email":
        return sub.email
    if channel == "telegram":
        return sub.telegram_chat_id
    return sub.feed_token
