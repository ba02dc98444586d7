"""Leases: who does a shared piece of work, for how long, across processes.

Several workers (``smart-agent worker``, any number of ``serve``) share one
database. A lease is one row naming a piece of work (``poll:<source>``, the
channels' background listener, a channel's pause) with an ``owner`` and an
``until``. Taking it is **one conditional UPDATE** (its WHERE re-checks that
it is free or already ours), so of two workers asking at the same instant
exactly one gets it, on SQLite and PostgreSQL alike. A worker that dies holds
nothing for long: its lease simply runs out and the next worker takes it.

A channel's pause is a lease too, owned by nobody: ``pause`` sets how long
every worker leaves the channel alone after it could not be reached, doubling
with each failure in a row, and ``resume`` forgets the failures once it is back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, col, select, update

from agent.models import UtcDateTime

#: Before any lease was taken: every lease is free then.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
#: A paused channel is tried again after 5 s, then twice as late each time, up to 5 minutes.
PAUSE_FIRST = timedelta(seconds=5)
PAUSE_CAP = timedelta(minutes=5)


class Lease(SQLModel, table=True):
    """One piece of shared work and who holds it until when."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True)
    #: The worker holding it (``host:pid:random``); ``None`` once released.
    owner: str | None = None
    until: datetime = Field(sa_type=UtcDateTime, nullable=False)
    #: Failures in a row (a channel's pause uses them for its backoff).
    failures: int = 0


def take(
    session: Session,
    name: str,
    *,
    owner: str,
    now: datetime,
    hold: timedelta,
    early: timedelta = timedelta(0),
) -> bool:
    """Take ``name`` for ``owner`` until ``now + hold``, if it is free; say whether we got it.

    A lease is free once its ``until`` has passed (``early`` lets a worker whose
    timer fired a little before that take it anyway) and always to its owner.
    The caller commits at once.
    """
    _ensure(session, name)
    result = session.execute(
        update(Lease)
        .where(col(Lease.name) == name)
        .where(sa.or_(col(Lease.until) <= now + early, col(Lease.owner) == owner))
        .values(owner=owner, until=now + hold)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(session: Session, name: str, *, owner: str, until: datetime) -> bool:
    """Let ``name`` go, free again from ``until``; only its owner can. Say whether it was ours."""
    result = session.execute(
        update(Lease)
        .where(col(Lease.name) == name, col(Lease.owner) == owner)
        .values(owner=None, until=until)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def pause(session: Session, name: str, *, now: datetime) -> timedelta:
    """Count one more failure of ``name`` and leave it alone for longer; return for how long.

    A failure reported while a pause stands is the same outage, seen by
    another worker whose send had started before it: it is not counted, or
    three workers failing at once would triple the wait at the first outage.
    """
    _ensure(session, name)
    row = session.exec(select(Lease).where(col(Lease.name) == name).with_for_update()).one()
    if row.failures and row.until > now:
        return row.until - now
    row.failures += 1
    delay = min(PAUSE_FIRST * (1 << min(row.failures - 1, 16)), PAUSE_CAP)
    row.until = max(row.until, now + delay)
    session.add(row)
    return delay


def resume(session: Session, name: str) -> bool:
    """Forget the failures of ``name``; say whether it had any."""
    result = session.execute(
        update(Lease).where(col(Lease.name) == name, col(Lease.failures) > 0).values(failures=0)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def held(session: Session, names: Sequence[str], *, now: datetime) -> set[str]:
    """Which of ``names`` are held (or paused) at ``now``."""
    query = select(Lease.name).where(col(Lease.name).in_(list(names)), col(Lease.until) > now)
    return set(session.exec(query).all())


def _ensure(session: Session, name: str) -> None:
    # The row is made free the first time a name is used; an insert that finds
    # it there already does nothing, so two workers making it at once is fine.
    table = Lease.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).values(name=name, until=EPOCH).on_conflict_do_nothing())
