"""Opening the database. The only place that knows which engine is in use.

SQLite is the embedded default; any SQLAlchemy URL works (PostgreSQL is a URL
change). ``init`` runs the Alembic migrations (``agent/migrations``) up to the
newest revision and is safe to run on every start.

An operator's mistake never reaches the user as a traceback: a URL no engine
understands is a ``ConfigError``; a database that cannot be opened or written
(a path under a file, a folder, a read-only file system, a full disk, a lock
another process holds past the busy timeout) is a ``StorageError`` naming the
file and the cause (see ``agent.db_errors``), raised wherever the failing
statement ran, once its transaction is rolled back.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError as AlembicError
from sqlalchemy.engine import URL, Connection, Engine
from sqlmodel import Session, SQLModel

from agent import accounts, leases, throttle  # noqa: F401  (their tables join the metadata)
from agent.db_errors import Target, first_line, translate
from agent.errors import ConfigError, StorageError
from agent.migrations import baseline
from agent.models import Delivery, Subscription, new_public_id, new_secret

#: The Alembic scripts: ``env.py`` and ``versions/``, shipped inside the package.
MIGRATIONS = Path(__file__).with_name("migrations")
#: The revision of the last release made before migrations (``agent.migrations.baseline``).
BASELINE = "0001"

_log = logging.getLogger(__name__)

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
        # A server may restart under us: a pooled connection is checked before use.
        engine = sa.create_engine(parsed, pool_pre_ping=parsed.get_backend_name() != "sqlite")
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
    """Bring the database to the newest schema (Alembic migrations) and fill in older rows.

    An empty database is migrated from nothing; one made before migrations is
    first given the schema of revision 0001 and stamped with it. Safe and quick
    to run on every start: an up-to-date database only has its revision read.
    """
    with engine.connect() as connection, _one_at_a_time(connection):
        _migrate(connection)
        _fill_random_columns(connection)
        _move_legacy_addresses(connection)
        connection.commit()


#: The PostgreSQL advisory lock ``init`` holds: any number 64-bit, the same in every process.
_MIGRATION_LOCK = 7_270_127_001


@contextlib.contextmanager
def _one_at_a_time(connection: Connection) -> Iterator[None]:
    # Workers started together would each run the migrations, and the loser
    # fail on a table the winner just made: the others wait, then find them
    # done. PostgreSQL has advisory locks; an SQLite file gets a lock file
    # beside it.
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({_MIGRATION_LOCK})")
        try:
            yield
        finally:
            # A failed migration invalidates the connection, which closes it and
            # so ends its lock; asking it to unlock would hide the error.
            if not connection.invalidated:
                connection.exec_driver_sql(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK})")
                connection.commit()
        return
    file = _target(connection.engine.url).file
    if file is None:
        yield
        return
    try:
        lock = open(file.with_name(file.name + ".init-lock"), "a")  # noqa: SIM115
    except OSError:  # a read-only folder: opening the database will say so, in its words
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _migrate(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode changes an SQLite table by copying it and dropping the old
        # one, which foreign keys would refuse while rows point at it.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        # pysqlite opens a transaction only before it writes a row, so each
        # CREATE or ALTER would be committed on its own: one that failed
        # halfway would leave new tables without the revision that made them.
        # SQLite's DDL is transactional; this makes an upgrade all or nothing.
        connection.exec_driver_sql("BEGIN")
    try:
        config = _alembic_config(connection)
        before = MigrationContext.configure(connection).get_current_revision()
        if before is None:
            _adopt(connection, config)
        command.upgrade(config, "head")
        connection.commit()
        after = MigrationContext.configure(connection).get_current_revision()
    except AlembicError as exc:
        connection.invalidate()
        name = _target(connection.engine.url).name
        raise StorageError(f"database {name}: cannot be migrated: {first_line(exc)}") from exc
    except BaseException:
        # Foreign keys are off on this connection: it must not go back to the pool.
        connection.invalidate()
        raise
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
    if after != before:
        _log.info("database schema upgraded from %s to %s", before or "nothing", after)


def _alembic_config(connection: Connection) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection  # env.py migrates this connection
    return config


def _adopt(connection: Connection, config: AlembicConfig) -> None:
    # No revision: empty, or made before migrations by ``create_all``. The latter
    # gets the tables, nullable columns and indexes of the revision it is stamped
    # with (releases before the previous one lacked some), as ``init`` did then.
    tables = set(sa.inspect(connection).get_table_names())
    if not tables:
        return
    # The web app's tables: made by this release's code before it had migrations.
    current = "user" in tables
    schema = SQLModel.metadata if current else baseline.metadata()
    schema.create_all(connection)
    _add_missing_columns(connection, schema)
    _fill_random_columns(connection)
    for table in schema.sorted_tables:
        for index in table.indexes:
            index.create(connection, checkfirst=True)
    command.stamp(config, "head" if current else BASELINE)


def _add_missing_columns(connection: Connection, schema: sa.MetaData) -> None:
    # Nothing is ever dropped or rewritten: a column an earlier release lacked
    # is added empty (each such column is nullable).
    inspector = sa.inspect(connection)
    for table in schema.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and column.nullable:
                kind = column.type.compile(dialect=connection.dialect)
                connection.execute(
                    sa.text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}')
                )


def _fill_random_columns(connection: Connection) -> None:
    # Rows made before links and Message-IDs were named by random values get
    # theirs now, one each, so nothing that leaves the process names a row id.
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


def _move_legacy_addresses(connection: Connection) -> None:
    # A database from before addresses were kept by channel: copy each row's
    # old address columns into ``addresses`` once; the old columns stay unused.
    present = {c["name"] for c in sa.inspect(connection).get_columns("subscription")}
    legacy = [name for name in _LEGACY_ADDRESS_COLUMNS if name in present]
    if not legacy:
        return
    table = sa.table("subscription", sa.column("id"), sa.column("addresses", sa.JSON),
                     *(sa.column(name) for name in legacy))  # fmt: skip
    rows = connection.execute(sa.select(table).where(table.c.addresses.is_(None))).mappings().all()
    for row in rows:
        found = {_LEGACY_ADDRESS_COLUMNS[n]: row[n] for n in legacy if row[n]}
        connection.execute(sa.update(table).where(table.c.id == row["id"]).values(addresses=found))


def relaxed_commit(session: Session) -> None:
    """Let this transaction's commit return before the server's disk has it (PostgreSQL).

    Only for a transaction whose loss in a crash of the server itself is
    harmless: such a commit is either kept whole or lost whole, within a
    fraction of a second of being made. Elsewhere it does nothing.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
