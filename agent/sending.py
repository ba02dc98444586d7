"""One dispatch run's work: claim a group, render and send it, record the outcome.

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
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

import notifiers
from agent import leases, outbox
from agent.db import relaxed_commit
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
#: Why rows claimed by a run that was stopped before sending them wait again.
STOPPED = "the worker stopped before sending"
#: At most this many groups are claimed in one transaction.
CLAIM_BATCH = 16

T = TypeVar("T")
#: A claimed group: which, and the rows claimed (none: nothing to send after all).
Claim = tuple[Group, list[outbox.Claimed]]


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


def _pause(channel: str) -> str:
    return f"pause:{channel}"


@dataclass
class Run:
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
    #: Where database round trips run (None: on the event loop's thread).
    threads: ThreadPoolExecutor | None = None

    async def claim(self, *, busy: set[Group], room: Mapping[str, int]) -> list[Claim]:
        """Claim the oldest due groups not in ``busy``, up to ``room`` per channel.

        One transaction claims as many groups as there are free sending slots
        (``room``, per channel; a paused channel has none), at most
        ``CLAIM_BATCH``: the busier the run, the more each commit carries.
        Alerts to a suppressed address are held there and then.
        """
        if self.threads is None:
            return self._counted(self._claim(busy, room))
        loop = asyncio.get_running_loop()
        claiming = loop.run_in_executor(self.threads, self._claim, busy, room)
        try:
            return self._counted(await asyncio.shield(claiming))
        except asyncio.CancelledError:
            # The claim goes on in its thread: what it got is given back, or it
            # would wait out its lease before anyone sent it.
            found, _ = await claiming
            ids = [i for _, rows in found for c in rows if (i := c.delivery.id) is not None]
            if ids:
                await self._in_database(
                    lambda: _commit(
                        self.db,
                        lambda s: outbox.release(s, ids, owner=self.owner, reason=STOPPED),
                    )
                )
            raise

    def _counted(self, claimed: tuple[list[Claim], int]) -> list[Claim]:
        found, held = claimed
        self.result.suppressed += held
        return found

    def _claim(self, busy: set[Group], room: Mapping[str, int]) -> tuple[list[Claim], int]:
        found: list[Claim] = []
        held = 0
        with Session(self.db, expire_on_commit=False) as session:
            # A claim lost in a crash of the database server leaves its rows due,
            # to be sent (again, with the same Message-ID): never lost. Not
            # waiting for the disk matters here: a run makes its claims one
            # after another, and every send waits for one.
            relaxed_commit(session)
            now = self.clock()
            paused = leases.held(session, [_pause(c) for c in self.notifiers], now=now)
            free = {c: n for c, n in room.items() if n > 0 and _pause(c) not in paused}
            taken = set(busy)
            while free and len(found) < CLAIM_BATCH:
                skip = [c for c in self.notifiers if c not in free]
                group = outbox.next_group(session, now=now, skip=skip, busy=taken)
                if group is None:
                    break
                taken.add(group)
                rows = outbox.claim(session, group, now=now, owner=self.owner, lease=self.lease)
                if self.flood is not None:
                    rows = self.flood.apply(session, rows, owner=self.owner, now=now)
                if suppressed := self._hold_suppressed(session, group[1], rows):
                    held, rows = held + suppressed, []
                found.append((group, rows))
                if rows and group[1] in free:
                    free[group[1]] -= 1
                    if not free[group[1]]:
                        del free[group[1]]
            session.commit()
        return found, held

    def _hold_suppressed(self, session: Session, channel: str, rows: list[outbox.Claimed]) -> int:
        """Hold ``rows`` if their address is suppressed on ``channel``; return how many."""
        if not rows or channel not in self.notifiers:
            return 0
        address = _address(rows[0].subscription, channel)
        block = None if address is None else outbox.suppression(session, channel, address)
        if block is None:
            return 0
        ids = [i for c in rows if (i := c.delivery.id) is not None]
        return outbox.hold(session, ids, owner=self.owner, reason=block.reason)

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
                ids = [i for c in group if (i := c.delivery.id) is not None]
                await self.suppress(channel, address, str(exc), ids)
                done.update(c.delivery.id or 0 for c in group)
                return
            except DeliveryError as exc:
                # A rate limit is a wait, not a failure: under load it is routine.
                level = logging.INFO if isinstance(exc, RateLimited) else logging.WARNING
                logger.log(level, "%s to %s failed: %s", channel, sub.name, exc)
                await self.fail(ids, exc)
            else:
                await self.sent(ids, receipt)
                await self.channel_works(channel)
            done.update(ids)

    async def suppress(self, channel: str, address: str, reason: str, ids: list[int]) -> None:
        """Record that ``channel`` refused ``address`` for good; hold ``ids`` there."""

        def record(session: Session) -> int:
            outbox.suppress(session, channel, address, reason=reason, now=self.clock())
            return outbox.hold(session, ids, owner=self.owner, reason=reason)

        self.result.suppressed += await self._record(ids, record)
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
                return await self._in_database(lambda: _commit(self.db, change))
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

    async def _in_database(self, work: Callable[[], T]) -> T:
        if self.threads is None:
            return work()
        return await asyncio.get_running_loop().run_in_executor(self.threads, work)


def _commit(db: Engine, change: Callable[[Session], int]) -> int:
    with Session(db) as session:
        done = change(session)
        session.commit()
    return done


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
