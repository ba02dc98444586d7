"""Opening the database. The only place that knows which engine is in use.

SQLite is the embedded default; any SQLAlchemy URL works (PostgreSQL is a URL
change). ``init`` creates missing tables and is safe to run on every start.

An operator's mistake never reaches the user as a traceback: a URL no engine
understands is a ``ConfigError``; a database that cannot be opened or written
(a path under a file, a folder, a read-only file system, a full disk, a lock
another process holds past the busy timeout) is a ``StorageError`` naming the
file and the cause (see ``agent.db_errors``), raised wherever the failing
statement ran, once its transaction is rolled back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlmodel import SQLModel

from agent import accounts, throttle  # noqa: F401  (their tables join the metadata)
from agent.db_errors import Target, first_line, translate
from agent.errors import ConfigError, StorageError
from agent.models import Delivery, Subscription, new_public_id, new_secret

#: Seconds SQLite waits for another process's write lock before giving up;
#: an SQLite URL's ``?timeout=SECONDS`` (pysqlite's own parameter) changes it.
BUSY_TIMEOUT = 10.0
#: Said after an SQLite URL SQLAlchemy refuses.
_SQLITE_FORMS = " (write sqlite:///relative/path.db or sqlite:////absolute/path.db)"

#: Random identity columns an older database gains empty, and what fills them in.
_RANDOM_COLUMNS: tuple[tuple[sa.Table, str, Callable[[], str]], ...] = (
    (Subscription.__table__, "public_id", new_public_id),  # type: ignore[attr-defined]
    (Subscription.__table__, "link_secret", new_secret),  # type: ignore[attr-defined]
    (Delivery.__table__, "message_token", new_public_id),  # type: ignore[attr-defined]
)


def connect(url: str) -> Engine:
    """Create an engine for ``url``; for SQLite, make its folder and turn on WAL.

    Raises ``ConfigError`` for a URL no installed engine understands and
    ``StorageError`` when an SQLite file's folder cannot be made; from then
    on the engine raises ``StorageError`` for a database it cannot use.
    """
    parsed = _parse(url)
    target = _target(parsed)
    if target.file is not None:
        _make_folder(target.file)
    try:
        engine = sa.create_engine(parsed)
    except (sa.exc.ArgumentError, ImportError) as exc:
        # An unknown dialect is an ArgumentError (NoSuchModuleError); a missing driver, ImportError.
        hint = _SQLITE_FORMS if parsed.get_backend_name() == "sqlite" else ""
        shown = parsed.render_as_string(hide_password=True)
        raise ConfigError(f"agent.database_url {shown}: {first_line(exc)}{hint}") from exc
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", functools.partial(_sqlite_pragmas, target))
    sa.event.listen(engine, "handle_error", functools.partial(translate, target))
    return engine


def _parse(url: str) -> URL:
    try:
        return sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"agent.database_url {url!r} is not a database URL: {exc}") from exc


def _target(url: URL) -> Target:
    if url.get_backend_name() != "sqlite":
        return Target(url.render_as_string(hide_password=True), None, 0.0)
    given = url.query.get("timeout", BUSY_TIMEOUT)
    try:
        timeout = float(str(given))  # seconds, as pysqlite reads it too
    except ValueError:
        raise ConfigError(
            f"agent.database_url: timeout={given} is not a number of seconds"
        ) from None
    # A plain file path: not in memory, not an SQLite "file:" URI (uri=true).
    if url.database in (None, "", ":memory:") or "uri" in url.query:
        return Target(str(url.database or ":memory:"), None, timeout)
    return Target(str(url.database), Path(str(url.database)), timeout)


def _make_folder(path: Path) -> None:
    if path.is_dir():
        raise StorageError(f"database {path}: is a folder; agent.database_url must name a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
        cause = (
            f"{blocker} is a file, not a folder"
            if blocker is not None and not blocker.is_dir()
            else exc.strerror or str(exc)
        )
        raise StorageError(f"database {path}: cannot create its folder: {cause}") from exc


def _sqlite_pragmas(target: Target, connection: Any, _record: Any) -> None:
    # The busy timeout comes first, so that even turning WAL on waits for a
    # lock instead of failing. WAL lets the HTTP server read feeds while a poll
    # writes; the busy timeout makes writers wait for each other.
    cursor = connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(target.busy_timeout * 1000)}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def init(engine: Engine) -> None:
    """Create every missing table and index, and add columns newer releases brought."""
    SQLModel.metadata.create_all(engine)
    _add_missing_columns(engine)
    _fill_random_columns(engine)
    _move_legacy_addresses(engine)
    _add_missing_indexes(engine)


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


def _fill_random_columns(engine: Engine) -> None:
    # Rows made before links and Message-IDs were named by random values get
    # theirs now, one each, so nothing that leaves the process names a row id.
    with engine.begin() as connection:
        for table, name, factory in _RANDOM_COLUMNS:
            column, key = table.c[name], table.primary_key.columns.values()[0]
            empty = connection.execute(sa.select(key).where(column.is_(None))).scalars().all()
            if empty:
                statement = (
                    sa.update(table)
                    .where(key == sa.bindparam("row"))
                    .values({name: sa.bindparam("value")})
                )
                connection.execute(statement, [{"row": r, "value": factory()} for r in empty])


#: Before addresses were kept by channel, each had a column of its own: column → channel.
_LEGACY_ADDRESS_COLUMNS = {"email": "email", "telegram_chat_id": "telegram"}


def _move_legacy_addresses(engine: Engine) -> None:
    # A database from before addresses were kept by channel: copy each row's
    # old address columns into ``addresses`` once; the old columns stay unused.
    present = {c["name"] for c in sa.inspect(engine).get_columns("subscription")}
    legacy = [name for name in _LEGACY_ADDRESS_COLUMNS if name in present]
    if not legacy:
        return
    table = sa.table("subscription", sa.column("id"), sa.column("addresses", sa.JSON),
                     *(sa.column(name) for name in legacy))  # fmt: skip
    with engine.begin() as connection:
        rows = (
            connection.execute(sa.select(table).where(table.c.addresses.is_(None))).mappings().all()
        )
        for row in rows:
            found = {_LEGACY_ADDRESS_COLUMNS[n]: row[n] for n in legacy if row[n]}
            connection.execute(
                sa.update(table).where(table.c.id == row["id"]).values(addresses=found)
            )


def _add_missing_indexes(engine: Engine) -> None:
    # create_all makes the indexes of new tables only; an added column's
    # unique index (public ids, message tokens) is made here, once filled in.
    with engine.begin() as connection:
        for table in SQLModel.metadata.sorted_tables:
            for index in table.indexes:
                index.create(connection, checkfirst=True)
