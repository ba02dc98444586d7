"""Opening the database. The only place that knows which engine is in use.

SQLite is the embedded default; any SQLAlchemy URL works (PostgreSQL is a URL
change). ``init`` creates missing tables and is safe to run on every start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import agent.models  # noqa: F401  (registers the tables on SQLModel.metadata)


def connect(url: str) -> Engine:
    """Create an engine for ``url``; for SQLite, make its folder and turn on WAL."""
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets the HTTP server read feeds while a poll writes; the busy timeout
    # makes the two wait for each other instead of failing.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def init(engine: Engine) -> None:
    """Create every missing table and index."""
    SQLModel.metadata.create_all(engine)
