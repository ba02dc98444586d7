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

A database locked by another process right after a send must not send it
twice: recording the outcome is tried again, with backoff, for half the
lease; only then is the group left to be resent when its lease ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

import notifiers
from agent import outbox
from agent.errors import (
    AddressRejected,
    DatabaseLocked,
    DeliveryError,
    PermanentDeliveryError,
    RateLimited,
    StorageError,
)
from agent.flood import FloodCap
from agent.links import Links
from agent.models import Delivery, StoredEvent, Subscription
from agent.rendering import Alert, Recipient, Renderer
from agent.schedule import Cadence
from notifiers import Notifier

logger = logging.getLogger(__name__)

#: How long recording a send's outcome is retried while the database is locked:
#: well inside the lease, so no other run can have claimed the rows meanwhile.
RECORD_WINDOW = outbox.LEASE / 2
#: The first pause between those tries; it doubles, up to ``RECORD_PAUSE_CAP``.
RECORD_PAUSE = 0.2
RECORD_PAUSE_CAP = 15.0


@dataclass
class DispatchResult:
    """Counts of what one dispatch run did, by delivery."""

    sent: int = 0
    retrying: int = 0
    dead: int = 0
    #: Held because their address is suppressed on their channel.
    suppressed: int = 0
    #: Why deliveries failed (a rate limit is a wait, not a failure, and is left out).
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
    flood: FloodCap | None = None,
) -> DispatchResult:
    """Send every due delivery once; return what happened.

    ``owner`` names this run's leases (a random token by default); ``flood`` caps
    immediate alerts per subscriber, channel and hour.
    """
    run = _Run(db, notifiers, renderer, links, clock, max_attempts, owner or uuid.uuid4().hex)
    with Session(db) as session:
        groups = outbox.due_groups(session, now=clock())
    for group in groups:
        with Session(db, expire_on_commit=False) as session:
            claimed = outbox.claim(session, group, now=clock(), owner=run.owner)
            if flood is not None:
                claimed = flood.apply(session, claimed, owner=run.owner, now=clock())
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
        except StorageError:
            raise  # the database, not a row: sending the rows again one by one would duplicate
        except Exception as exc:  # one bad row must not stall the others
            left = [c for c in group if c.delivery.id not in done]
            if len(left) == 1 and len(group) == 1:
                reason = f"cannot render or send: {type(exc).__name__}: {exc}"
                logger.error("%s to %s failed: %s", channel, group[0].subscription.name, reason)
                await self.fail(
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
            await self.fail([a.delivery_id for a in alerts], PermanentDeliveryError(why))
            done.update(a.delivery_id for a in alerts)
            return
        if await self.held(channel, address, [a.delivery_id for a in alerts]):
            done.update(a.delivery_id for a in alerts)
            return
        recipient = recipient_for(sub, address, self.links, channel)
        for outgoing in self.renderer.render(channel, recipient, alerts, now=self.clock()):
            ids = list(outgoing.delivery_ids)
            try:
                receipt = await notifier.send(outgoing.message)
            except AddressRejected as exc:
                logger.warning("%s to %s refused for good: %s", channel, sub.name, exc)
                await self.suppress(channel, address, str(exc))
                await self.held(channel, address, [i for c in group if (i := c.delivery.id)])
                done.update(c.delivery.id or 0 for c in group)
                return
            except DeliveryError as exc:
                logger.warning("%s to %s failed: %s", channel, sub.name, exc)
                await self.fail(ids, exc)
            else:
                await self.sent(ids, receipt)
            done.update(ids)

    async def held(self, channel: str, address: str, ids: list[int]) -> bool:
        """Hold the rows if ``address`` is suppressed on ``channel``; say whether it is."""

        def hold(session: Session) -> int:
            block = outbox.suppression(session, channel, address)
            if block is None:
                return -1
            return outbox.hold(session, ids, owner=self.owner, reason=block.reason)

        held = await self._record(ids, hold)
        self.result.suppressed += max(held, 0)
        return held >= 0

    async def suppress(self, channel: str, address: str, reason: str) -> None:
        """Record that ``channel`` refused ``address`` for good."""

        def record(session: Session) -> int:
            outbox.suppress(session, channel, address, reason=reason, now=self.clock())
            return 1

        await self._record([], record)
        self.result.errors.append(reason)

    async def sent(self, ids: list[int], receipt: str | None) -> None:
        """Record an accepted message; rows another run owns by now are left to it."""
        marked = await self._record(
            ids,
            lambda session: outbox.mark_sent(
                session, ids, owner=self.owner, now=self.clock(), receipt=receipt
            ),
        )
        if marked < len(ids):
            logger.warning(
                "%d rows were re-claimed by another run after their lease ended", len(ids) - marked
            )
        self.result.sent += marked

    async def fail(self, ids: list[int], error: DeliveryError) -> None:
        """Record a failed send: retry later, or dead."""
        dead = await self._record(
            ids,
            lambda session: outbox.mark_failed(
                session,
                ids,
                error,
                owner=self.owner,
                now=self.clock(),
                max_attempts=self.max_attempts,
            ),
        )
        self.result.dead += dead
        self.result.retrying += len(ids) - dead
        if not isinstance(error, RateLimited):
            self.result.errors.append(str(error))

    async def _record(self, ids: list[int], change: Callable[[Session], int]) -> int:
        # The message has gone out: a lock held by another process (a CLI
        # command, a second dispatcher) is waited out, since giving up would
        # leave the rows leased and send them again when the lease ends.
        # Real time, not ``clock``: the wait is for a real lock.
        deadline = time.monotonic() + RECORD_WINDOW.total_seconds()
        pause = RECORD_PAUSE
        while True:
            try:
                with Session(self.db) as session:
                    done = change(session)
                    session.commit()
                return done
            except DatabaseLocked as exc:
                if time.monotonic() + pause > deadline:
                    logger.error(
                        "could not record the outcome of deliveries %s: %s; they may be sent "
                        "again when their lease ends",
                        _ids(ids),
                        exc,
                    )
                    raise
                logger.warning("%s; recording deliveries %s again in %.1f s", exc, _ids(ids), pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECORD_PAUSE_CAP)


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:10])) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


def alert_for(delivery: Delivery, event: StoredEvent) -> Alert:
    """The alert a stored delivery carries, ready for rendering."""
    assert delivery.id is not None
    return Alert(
        delivery.id,
        event.to_event(),
        delivery.reasons,
        event.created_at,
        delivery.message_token,
        rolled_over=bool(delivery.rolled_over),
    )


def recipient_for(
    sub: Subscription, address: str, links: Links, channel: str | None = None
) -> Recipient:
    """Who a subscription's messages go to, with its links; on ``channel``, maybe a digest."""
    cadence = (sub.cadences or {}).get(channel or "", sub.cadence)
    return Recipient(
        digest=cadence != Cadence.IMMEDIATE,
        subscription_name=sub.name,
        address=address,
        language=sub.language,
        feed_url=links.feed_url(sub),
        unsubscribe_url=links.unsubscribe_url(sub),
        manage_url=links.manage_url(sub),
        public_id=sub.public_id,
        rule=sub.compiled,
    )


def _address(sub: Subscription, channel: str) -> str | None:
    # A feed is addressed by the subscription's own token, not by an address.
    if notifiers.channel(channel).address_field is None:
        return sub.feed_token
    return (sub.addresses or {}).get(channel)
