"""The database a test runs on: an SQLite file by default, PostgreSQL on request.

``SMART_AGENT_TEST_DATABASE=postgresql`` runs every test that asks ``url()``
for its database on a real PostgreSQL server instead of SQLite: the server
(``tests.postgres``) is started on the first request, once per pytest process
(each xdist worker has its own), and stopped when the session ends
(``stop()``, from conftest). Each ``url()`` is then a fresh, empty database on
it. Tests about SQLite itself are marked ``sqlite_only("why")`` and skipped on
that run.
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Mapping
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import postgres

#: The environment variable that chooses the backend.
VARIABLE = "SMART_AGENT_TEST_DATABASE"


class Backend(enum.StrEnum):
    """The database engines the suite runs on."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


def chosen(environ: Mapping[str, str]) -> Backend:
    """The backend ``environ`` asks for; SQLite when it says nothing."""
    value = environ.get(VARIABLE, "").strip().lower() or Backend.SQLITE
    try:
        return Backend(value)
    except ValueError:
        names = " or ".join(backend.value for backend in Backend)
        raise pytest.UsageError(f"{VARIABLE}={value!r}: say {names}") from None


#: This run's backend.
BACKEND = chosen(os.environ)


class _Server:
    """This process's PostgreSQL server, started on first use."""

    def __init__(self) -> None:
        self.running = contextlib.ExitStack()
        self.admin_url: str | None = None

    def url(self) -> str:
        if self.admin_url is None:
            if postgres.BIN is None:
                pytest.skip(postgres.REASON)
            self.admin_url = self.running.enter_context(postgres.server())
        return self.admin_url

    def stop(self) -> None:
        self.admin_url = None
        self.running.close()


_SERVER = _Server()


def server() -> str:
    """The admin URL of this process's PostgreSQL server, started on first use.

    Skips the calling test, saying why, where PostgreSQL is not installed.
    """
    return _SERVER.url()


def stop() -> None:
    """Stop the server if this process started one (at the end of the session)."""
    _SERVER.stop()


class _Handed:
    """What ``url`` handed out, for conftest's checks."""

    def __init__(self) -> None:
        #: Whether ``url`` was called since ``asked()`` last answered.
        self.asked = False
        #: Every SQLite file handed out in this process.
        self.files: set[str] = set()


_HANDED = _Handed()


def url(folder: Path, name: str = "a.db", *, backend: Backend = BACKEND) -> str:
    """A fresh database for one test: SQLite's ``folder/name``, or an empty PostgreSQL one.

    Call it once per database and keep the answer: on PostgreSQL each call
    makes a new database.
    """
    _HANDED.asked = True
    if backend is Backend.SQLITE:
        _HANDED.files.add(str(folder / name))
        return f"sqlite:///{folder / name}"
    return postgres.database(server())


def asked() -> bool:
    """Whether a database was asked for since the last call (conftest calls it after each test)."""
    answer, _HANDED.asked = _HANDED.asked, False
    return answer


def handed_out(path: str) -> bool:
    """Whether ``path`` is an SQLite file ``url`` handed out in this process."""
    return path in _HANDED.files


def sqlite_only_skip(reason: tuple[object, ...], backend: Backend) -> str | None:
    """Why a test marked ``sqlite_only(*reason)`` is skipped on ``backend``; ``None`` to run it."""
    if len(reason) != 1 or not isinstance(reason[0], str) or not reason[0]:
        raise pytest.UsageError(f"sqlite_only takes one reason, not {reason!r}")
    return None if backend is Backend.SQLITE else f"SQLite only: {reason[0]}"


def migrated(database: str) -> bool:
    """Whether ``init`` ran on the database at URL ``database`` (it has Alembic's table)."""
    engine = sa.create_engine(database)
    try:
        return sa.inspect(engine).has_table("alembic_version")
    finally:
        engine.dispose()
