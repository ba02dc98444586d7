"""Waking workers when alerts are queued: PostgreSQL's LISTEN/NOTIFY.

Whoever queues alerts (a poll, a replay, an admin's "retry now") NOTIFYs
``outbox.WAKE_CHANNEL`` in the same transaction, so the notification arrives
when the rows are there to be claimed. Each worker keeps one connection
LISTENing and dispatches at once instead of waiting for its next interval
(``agent.dispatch_every`` stays as the safety net, for retries and digests
coming due). If the server goes away the listener reconnects with backoff,
and wakes the dispatcher once it is back, in case it missed something.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import Engine

from agent.outbox import WAKE_CHANNEL

logger = logging.getLogger(__name__)

#: Reconnecting waits 1 s, then twice as long each time, up to 30 s.
FIRST_PAUSE = 1.0
PAUSE_CAP = 30.0


def can_listen(db: Engine) -> bool:
    """Whether the database can wake workers (PostgreSQL can; SQLite cannot)."""
    return db.dialect.name == "postgresql"


async def listen(db: Engine, wake: Callable[[], None]) -> None:
    """Call ``wake`` on every notification, until cancelled; reconnect when the server goes."""
    conninfo = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    pause, lost = FIRST_PAUSE, False
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f"LISTEN {WAKE_CHANNEL}")
                if lost:
                    logger.info("listening for queued alerts again")
                pause, lost = FIRST_PAUSE, False
                wake()  # anything queued while nobody listened
                async for _ in conn.notifies():
                    wake()
        except psycopg.Error as exc:
            if not lost:
                logger.warning("cannot listen for queued alerts: %s; trying again", _line(exc))
            lost = True
        await asyncio.sleep(pause)
        pause = min(pause * 2, PAUSE_CAP)


def _line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
