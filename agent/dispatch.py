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

A channel that cannot be reached at all (``ChannelUnavailable``) is paused
for every worker, with backoff, and its rows are given back in their places:
nothing is lost, no attempt is used up, and they go out in the order they
were made once it is back.

A database locked by another process, or a server restarting, right after a
send must not send it twice: recording the outcome is tried again, with
backoff, for half the lease; only then is the group left to be resent when
its lease ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

import notifiers
from agent import leases, outbox
from agent.errors import (
    AddressRejected,
    ChannelUnavailable,
    DeliveryError,
    PermanentDeliveryError,
    RateLimited,
    StorageError,
)
from agent.flood import FloodCap
from agent.links import Links
from agent.models import Delivery, StoredEvent, Subscription
from agent.outbox import Group
from agent.rendering import Alert, Recipient, Renderer
from agent.schedule import Cadence
from notifiers import Notifier

logger = logging.getLogger(__name__)

#: The first pause between tries to record a send's outcome while the database
#: is locked or unreachable; it doubles, up to ``RECORD_PAUSE_CAP``. The tries go
#: on for half the lease, so no other run can have claimed the rows meanwhile.
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
    lease: timedelta = outbox.LEASE,
    concurrency: int = 1,
) -> DispatchResult:
    """Send every due delivery once; return what happened.

    Groups are claimed one at a time, oldest first, so workers sharing the
    database split the work between them, and up to ``concurrency`` are sent
    at once (never two of one subscriber's, so each gets its alerts in order;
    a chat waiting for Telegram's per-chat limit holds up nobody else).
    ``owner`` names this run's leases (a random token by default) and
    ``lease`` how long they last; ``flood`` caps immediate alerts per
    subscriber, channel and hour. A channel another worker found unreachable
    is left alone until its pause ends (``agent.leases``).
    """
    run = _Run(db, notifiers, renderer, links, clock, max_attempts, owner or uuid.uuid4().hex)
    run.lease, run.flood = lease, flood
    sending: dict[asyncio.Task[None], int] = {}
    empty: Group | None = None
    try:
        while True:
            if len(sending) >= concurrency:
                await _first_done(sending)
                continue
            group, claimed = run.claim_next(busy=set(sending.values()))
            if group is None:
                if not sending:
                    break
                await _first_done(sending)  # its subscriber's newer alerts may be due
                continue
            if claimed:
                task = asyncio.create_task(run.send_group(group[1], claimed))
                sending[task] = group[0]
            elif group == empty:
                break  # handed the same group twice and got nothing: leave it to the next run
            empty = None if claimed else group
    finally:
        # A send under way is finished, never cut off: cutting it could send it twice.
        await asyncio.gather(*sending, return_exceptions=True)
    return run.result


async def _first_done(sending: dict[asyncio.Task[None], int]) -> None:
    done, _ = await asyncio.wait(sending, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        del sending[task]
        task.result()  # a storage error ends the run, once the other sends are done


def _pause(channel: str) -> str:
    return f"pause:{channel}"


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
    lease: timedelta = outbox.LEASE
    flood: FloodCap | None = None
    #: Channels a send went through on in this run: their pause is over.
    working: set[str] = field(default_factory=set)

    def claim_next(self, *, busy: set[int]) -> tuple[Group | None, list[outbox.Claimed]]:
        """Claim the oldest due group of a subscriber not in ``busy``, on a channel not paused."""
        with Session(self.db, expire_on_commit=False) as session:
            now = self.clock()
            paused = leases.held(session, [_pause(c) for c in self.notifiers], now=now)
            skip = [c for c in self.notifiers if _pause(c) in paused]
            group = outbox.next_group(session, now=now, skip=skip, busy=busy)
            if group is None:
                return None, []
            claimed = outbox.claim(session, group, now=now, owner=self.owner, lease=self.lease)
            if self.flood is not None:
                claimed = self.flood.apply(session, claimed, owner=self.owner, now=now)
            session.commit()
        return group, claimed

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
            except ChannelUnavailable as exc:
                await self.wait_for_channel(channel, [c.delivery.id or 0 for c in group], exc)
                done.update(c.delivery.id or 0 for c in group)
                return
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
                await self.channel_works(channel)
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

    async def wait_for_channel(self, channel: str, ids: list[int], error: DeliveryError) -> None:
        """Give the rows back unsent and pause ``channel`` for every worker, with backoff."""
        pause = timedelta(0)

        def record(session: Session) -> int:
            nonlocal pause
            pause = leases.pause(session, _pause(channel), now=self.clock())
            return outbox.release(session, ids, owner=self.owner, reason=str(error))

        waiting = await self._record(ids, record)
        logger.warning(
            "%s cannot be reached (%s); %d alerts wait, and every worker tries it again in %d s",
            channel,
            error,
            waiting,
            pause.total_seconds(),
        )
        self.result.retrying += waiting
        self.result.errors.append(str(error))

    async def channel_works(self, channel: str) -> None:
        """After a send went through: end the channel's run of failures, once a run."""
        if channel in self.working:
            return
        self.working.add(channel)
        if await self._record([], lambda session: int(leases.resume(session, _pause(channel)))):
            logger.info("%s can be reached again", channel)

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
        # command, a second dispatcher) or a database server restarting is
        # waited out, since giving up would leave the rows leased and send them
        # again when the lease ends.
        # Real time, not ``clock``: the wait is for a real lock.
        deadline = time.monotonic() + self.lease.total_seconds() / 2
        pause = RECORD_PAUSE
        while True:
            try:
                with Session(self.db) as session:
                    done = change(session)
                    session.commit()
                return done
            except StorageError as exc:
                if not exc.retryable or time.monotonic() + pause > deadline:
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
