"""Rate limits shared by every process through the database.

Each counted attempt is a row (``Attempt``: scope, hashed key, when); a limit is
"at most ``count`` attempts per ``window``" for one key. Because the rows live in
the database, several web processes see the same counts and a restart forgets
nothing. Keys (e-mail and IP addresses) are stored only as their SHA-256 with
the scope, so the table holds nobody's address in clear. ``prune`` keeps the
table small; no limit's window is longer than ``KEEP``.

Plain SQLAlchemy only: the same statements run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Session, SQLModel, col, delete, func, select
from sqlmodel import Field as SQLField

from agent.models import UtcDateTime

#: Rows older than this are of no use to any limit (``prune`` may delete them).
KEEP = timedelta(days=1)


class Scope(StrEnum):
    """What is counted, and so what a key names."""

    #: Confirmation messages sent to one address (key: ``channel:address``).
    CONFIRMATION_ADDRESS = "confirmation_address"
    #: Sign-ups (page or API) from one client (key: its IP address).
    SUBSCRIBE_CLIENT = "subscribe_client"
    #: Failed logins for one e-mail address (key: the address, lower-cased).
    LOGIN_ADDRESS = "login_address"
    #: Failed logins from one client (key: its IP address).
    LOGIN_CLIENT = "login_client"


@dataclass(frozen=True)
class Limit:
    """At most ``count`` attempts for one key within ``window``."""

    count: int
    window: timedelta


class Attempt(SQLModel, table=True):
    """One counted attempt: its scope, its key's digest and when."""

    __tablename__ = "throttle_attempt"
    __table_args__ = (sa.Index("ix_throttle_attempt_digest_at", "digest", "at"),)

    id: int | None = SQLField(default=None, primary_key=True)
    scope: Scope
    #: SHA-256 of the scope and the key (``digest``): no address in clear.
    digest: str = SQLField(max_length=64)
    at: datetime = SQLField(default=None, sa_column=Column(UtcDateTime(), nullable=False))


def digest(scope: Scope, key: str) -> str:
    """The stored form of ``key`` in ``scope``."""
    return hashlib.sha256(f"{scope.value}\0{key}".encode()).hexdigest()


def hit(session: Session, scope: Scope, key: str, now: datetime) -> Attempt:
    """Count one attempt for ``key`` (added to the session; the caller commits)."""
    attempt = Attempt(scope=scope, digest=digest(scope, key), at=now)
    session.add(attempt)
    session.flush()
    return attempt


def count(session: Session, scope: Scope, key: str, since: datetime) -> int:
    """How many attempts ``key`` made after ``since``."""
    query = select(func.count()).where(*_recent(scope, key, since))
    return int(session.exec(query).one())


def retry_after(
    session: Session, limit: Limit, scope: Scope, key: str, now: datetime
) -> timedelta | None:
    """How long until ``key`` may try again; ``None`` if it may now."""
    # Allowed again once the ``count``-th newest attempt leaves the window.
    query = (
        select(Attempt.at)
        .where(*_recent(scope, key, now - limit.window))
        .order_by(col(Attempt.at).desc())
        .offset(limit.count - 1)
        .limit(1)
    )
    oldest = session.exec(query).first()
    return None if oldest is None else oldest + limit.window - now


def allowed(session: Session, limit: Limit, scope: Scope, key: str, now: datetime) -> bool:
    """Whether ``key`` is under ``limit`` now."""
    return retry_after(session, limit, scope, key, now) is None


def claim(session: Session, limit: Limit, scope: Scope, key: str, now: datetime) -> Attempt | None:
    """Count an attempt if ``key`` is under ``limit``: the attempt, else ``None``. Commits.

    The attempt is committed before counting, so that two processes racing for
    the last place cannot both get it (at worst both are refused): checking
    first and counting after a slow step (sending mail) would let a burst through.
    """
    attempt = hit(session, scope, key, now)
    session.commit()
    if count(session, scope, key, now - limit.window) <= limit.count:
        return attempt
    session.delete(attempt)
    session.commit()
    return None


def forget(session: Session, scope: Scope, key: str) -> int:
    """Delete every attempt of ``key`` (its owner proved themselves); how many went."""
    statement = delete(Attempt).where(col(Attempt.digest) == digest(scope, key))
    return _rows(session.exec(statement))


def prune(session: Session, before: datetime) -> int:
    """Delete the attempts made before ``before``; how many went (the caller commits)."""
    return _rows(session.exec(delete(Attempt).where(col(Attempt.at) < before)))


def _recent(scope: Scope, key: str, since: datetime) -> tuple[Any, ...]:
    return (col(Attempt.digest) == digest(scope, key), col(Attempt.at) > since)


def _rows(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
