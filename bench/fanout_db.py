"""The fan-out benchmark's database: subscriptions, stored history, and outbox inserts.

Subscriptions are written as ``agent.subscriptions.save`` leaves them (the query in
``rule``, the compiled tree in ``compiled``, channels with their addresses, a
cadence), but in bulk: saving 10⁵ of them one by one, each with its name looked
up, would take longer than everything measured. Their delivery settings follow
a fixed mix (``CHANNEL_MIX``, ``CADENCE_MIX``) drawn from a seeded generator.
"""

from __future__ import annotations

import json
import random
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agent import db as database
from agent import outbox, store
from agent.config import AgentSettings
from agent.errors import StorageError
from agent.matching import Matcher
from agent.models import Delivery, Item, Subscription
from agent.pipeline import _deliveries
from bench import engines
from watchers import Batch

#: Channel sets and how often subscribers pick them: mostly e-mail, a fifth by
#: Telegram, some by feed, a few on two channels (1.15 channels a subscription).
CHANNEL_MIX: tuple[tuple[tuple[str, ...], int], ...] = (
    (("email",), 55),
    (("telegram",), 20),
    (("rss",), 10),
    (("email", "telegram"), 10),
    (("email", "rss"), 5),
)
#: Cadences and how often subscribers pick them; a tenth keep quiet hours.
CADENCE_MIX: tuple[tuple[str, int], ...] = (("immediate", 70), ("daily", 25), ("weekly", 5))
QUIET_SHARE = 0.1
#: The columns ``agent.pipeline`` fills in a delivery row (the rest take defaults).
ROW_COLUMNS = (
    "subscription_id",
    "event_id",
    "channel",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "reasons",
)
_INSERT_CHUNK = 5000


def mean_channels() -> float:
    """How many channels a subscription has on average, by ``CHANNEL_MIX``."""
    return sum(len(names) * w for names, w in CHANNEL_MIX) / sum(w for _, w in CHANNEL_MIX)


def create(path: Path) -> Engine:
    """Open a fresh SQLite file at ``path`` (WAL, as the service does) and create the tables."""
    engine = database.connect(f"sqlite:///{path}")
    database.init(engine)
    return engine


def copy(db: Engine, source: Path, target: Path) -> Engine:
    """Copy the database at ``source`` (open as ``db``) to ``target`` and open the copy.

    Each timed poll gets a copy of the same starting state; the source's log is
    written back into its file first, so the copy starts as a service's would.
    """
    with db.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    for stale in target.parent.glob(target.name + "*"):
        stale.unlink()
    shutil.copyfile(source, target)
    return database.connect(f"sqlite:///{target}")


def subscribe(db: Engine, queries: Sequence[str], *, seed: int, now: datetime) -> None:
    """Store one active subscription per query, compiled as ``subscriptions.save`` does."""
    rng = random.Random(seed)
    compiled = engines.persist(queries)
    sets, set_weights = zip(*CHANNEL_MIX, strict=True)
    cadences, cadence_weights = zip(*CADENCE_MIX, strict=True)
    rows = [
        _subscription(
            index,
            query,
            json.loads(tree),
            rng.choices(sets, set_weights)[0],
            rng.choices(cadences, cadence_weights)[0],
            "22-07" if rng.random() < QUIET_SHARE else None,
            now,
        )
        for index, (query, tree) in enumerate(zip(queries, compiled, strict=True))
    ]
    table = Subscription.__table__  # type: ignore[attr-defined]
    with Session(db) as session:
        for start in range(0, len(rows), _INSERT_CHUNK):
            session.execute(sa.insert(table), rows[start : start + _INSERT_CHUNK])
        session.commit()


def _subscription(
    index: int,
    query: str,
    tree: dict[str, Any],
    channels: tuple[str, ...],
    cadence: str,
    quiet: str | None,
    now: datetime,
) -> dict[str, Any]:
    addresses = {"email": f"reader{index}@example.org", "telegram": str(100_000_000 + index)}
    return {
        "name": f"bench {index}",
        "rule": {"query": query},
        "compiled": tree,
        "channels": list(channels),
        "addresses": {name: addresses[name] for name in channels if name in addresses},
        "language": "he",
        "cadence": cadence,
        "cadences": {},
        "quiet_hours": quiet,
        "feed_token": secrets.token_urlsafe(24),
        "active": True,
        "created_at": now,
        "updated_at": now,
    }


def remember(db: Engine, source: str, items: Sequence[Item], *, now: datetime) -> None:
    """Store ``items`` as an earlier silent baseline of ``source``: the history a service has."""
    with Session(db) as session:
        store.record(session, source, items, now=now, closing_window=timedelta(0), silent=True)
        session.commit()


@dataclass(frozen=True)
class ReplayWatcher:
    """A source whose every poll answers ``batch``: the download is not what is measured."""

    batch: Batch
    every: timedelta = timedelta(minutes=30)
    enabled: bool = True
    alert_on_first_poll: bool = True
    stale_limit: timedelta | None = None

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Return the batch."""
        return self.batch


def expected_rows(
    db: Engine,
    source: str,
    items: Sequence[Item],
    matcher: Matcher,
    *,
    settings: AgentSettings,
    channels: Sequence[str],
    now: datetime,
) -> list[dict[str, Any]]:
    """Commit the items and events of a poll that failed, and return its delivery rows.

    The rows are built by the pipeline's own ``_deliveries``, so a failed poll
    still leaves the baselines the very rows it would have written.
    """
    with Session(db) as session:
        recorded = store.record(
            session, source, items, now=now, closing_window=settings.closing_soon_window
        )
        session.commit()
    return [
        row
        for rec in recorded
        for row in _deliveries(matcher, rec, channels=channels, settings=settings, now=now)
    ]


def committed_rows(db: Engine) -> list[dict[str, Any]]:
    """Read back every committed delivery row as the pipeline handed it to the outbox."""
    table = Delivery.__table__  # type: ignore[attr-defined]
    with Session(db) as session:
        query = sa.select(*(table.c[name] for name in ROW_COLUMNS)).order_by(table.c.id)
        return [dict(row) for row in session.execute(query).mappings()]


def clear_outbox(db: Engine) -> None:
    """Delete every delivery row, so the same rows can be inserted again."""
    with Session(db) as session:
        session.execute(sa.delete(Delivery.__table__))  # type: ignore[attr-defined]
        session.commit()


@dataclass(frozen=True)
class Timed:
    """How long a step took, what it committed, and why it failed if it did."""

    seconds: float
    rows: int
    error: str | None = None

    @property
    def rows_per_second(self) -> float | None:
        """Committed rows per second, or None when the step failed."""
        if self.error is not None:
            return None
        return self.rows / self.seconds if self.seconds else float("inf")


def insert(db: Engine, rows: Sequence[dict[str, Any]], *, per_row: bool) -> Timed:
    """Insert ``rows`` in one transaction and commit; time it.

    Either all at once with ``outbox.enqueue`` (what a poll does), or one INSERT
    statement per row: the outbox's idempotent insert, compiled once and run for
    each row in turn (the best case of per-row inserts).
    """
    table = Delivery.__table__  # type: ignore[attr-defined]
    statement = sqlite.insert(table).on_conflict_do_nothing()
    start = time.perf_counter()
    try:
        with Session(db) as session:
            if per_row:
                connection = session.connection()
                queued = sum(connection.execute(statement, row).rowcount for row in rows)
            else:
                queued = outbox.enqueue(session, rows)
            session.commit()
    except StorageError as exc:
        return Timed(time.perf_counter() - start, 0, str(exc))
    return Timed(time.perf_counter() - start, queued)
