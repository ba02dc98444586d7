"""The dispatcher: due outbox rows → rendered messages → channels.

Due rows are grouped per (subscription, channel), so what fell due together
(one poll's results, or a daily digest) becomes one message, split only where
the channel's size limit demands. Groups are claimed just before they are
sent, as many as there are free sending slots, and several are sent at once
(``agent.sending`` does one run's claiming, sending and recording). Each message's rows are marked
sent only after its channel accepted it; see ``agent.outbox`` for the
guarantees.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from agent import outbox
from agent.flood import FloodCap
from agent.links import Links
from agent.outbox import Group
from agent.rendering import Renderer
from agent.sending import Claim, DispatchResult, Run
from notifiers import Notifier

__all__ = ["DispatchResult", "dispatch"]

#: Threads for a database server's round trips per dispatch run: enough for
#: the server to flush several commits at once, few enough for the pool.
DATABASE_THREADS = 4


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

    Groups are claimed oldest first, as many at a time as there are free
    sending slots, so workers sharing the database split the work between
    them, and up to ``concurrency`` are sent at once on each channel (never
    two of one subscription's on one channel, so each address gets its alerts
    in order; a chat waiting for Telegram's per-chat limit holds up nobody
    else). On a database server, claims and records run in a few threads, so
    that sends go on while a commit waits for the disk.
    ``owner`` names this run's leases (a random token by default) and
    ``lease`` how long they last; ``flood`` caps immediate alerts per
    subscriber, channel and hour. A channel another worker found unreachable
    is left alone until its pause ends (``agent.leases``).
    """
    run = Run(db, notifiers, renderer, links, clock, max_attempts, owner or uuid.uuid4().hex)
    run.lease, run.flood = lease, flood
    sending: dict[asyncio.Task[None], Group] = {}
    empty: list[Claim] | None = None
    with _database_threads(db) as run.threads:
        try:
            while True:
                # Each channel has its own slots: Telegram waiting out a chat's
                # limit must not hold up e-mail.
                room = _room(notifiers, sending.values(), concurrency)
                if sending and not any(room.values()):
                    await _first_done(sending)
                    continue
                found = await run.claim(busy=set(sending.values()), room=room)
                for group, rows in found:
                    if rows:
                        sending[asyncio.create_task(run.send_group(group[1], rows))] = group
                if not found:
                    if not sending:
                        break
                    await _first_done(sending)  # its subscriber's newer alerts may be due
                elif not any(rows for _, rows in found):
                    if found == empty:
                        break  # the same groups twice and nothing in them: leave them
                    empty = found
                else:
                    empty = None
        finally:
            # A send under way is finished, never cut off: cutting it could send it twice.
            await asyncio.gather(*sending, return_exceptions=True)
    return run.result


def _room(channels: Iterable[str], sending: Iterable[Group], concurrency: int) -> dict[str, int]:
    """How many more sends each channel may start."""
    counts = Counter(channel for _, channel in sending)
    return {channel: max(concurrency - counts[channel], 0) for channel in channels}


@contextlib.contextmanager
def _database_threads(db: Engine) -> Iterator[ThreadPoolExecutor | None]:
    """Threads for a database server's round trips, so sends go on while a commit waits.

    SQLite stays on the event loop's thread: it has one writer anyway, and a
    second thread writing beside a poll would trade waiting for "database is
    locked".
    """
    if db.dialect.name == "sqlite":
        yield None
        return
    with ThreadPoolExecutor(DATABASE_THREADS, thread_name_prefix="dispatch-db") as threads:
        yield threads


async def _first_done(sending: dict[asyncio.Task[None], Group]) -> None:
    done, _ = await asyncio.wait(sending, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        del sending[task]
        task.result()  # a storage error ends the run, once the other sends are done
