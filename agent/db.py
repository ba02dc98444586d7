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
    """Create every missing table and index, and add columns newer releases brought."""
    SQLModel.metadata.create_all(engine)
    _add_missing_columns(engine)


def _add_missing_columns(engine: Engine) -> None:
    # Until migrations arrive, a database made by an earlier release gains the
    # nullable columns added since; nothing is ever dropped or rewritten.
    inspector = sa.inspect(engine)
    with engine.begin() as connection:
        for table in SQLModel.metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    connection.execute(
                        sa.text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}')
                    )
