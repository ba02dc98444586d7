"""Alembic's entry point: migrates the connection ``agent.db.init`` hands over.

Run from the ``alembic`` command (``alembic -c agent/migrations/alembic.ini ...``)
it opens ``sqlalchemy.url`` from that file instead, through ``agent.db.connect``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from agent import accounts, db, leases, models, throttle  # noqa: F401  (their tables join the metadata)


def _migrate(connection: Connection) -> None:
    # SQLite alters little in place: batch mode copies a table to change it.
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run() -> None:
    given: Connection | None = context.config.attributes.get("connection")
    if given is not None:
        _migrate(given)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=SQLModel.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = db.connect(url or "")
    with engine.connect() as connection:
        _migrate(connection)
    engine.dispose()


_run()
