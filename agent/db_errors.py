"""What a database error means to an operator, said in one line.

The engine made by ``agent.db.connect`` hands every DBAPI error to
``translate`` (SQLAlchemy's ``handle_error`` event, which also sees the errors
of connecting), after SQLAlchemy has rolled the failing transaction back.
Errors that mean "this database cannot be used now" become ``StorageError``
(``DatabaseLocked`` for a lock); anything else (a constraint, a syntax error)
is left as it is: that is a bug, not an operator's problem.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import ExceptionContext

from agent.errors import DatabaseLocked, DatabaseUnavailable, StorageError

#: SQLite's primary result codes that mean the database cannot be used now, and why.
_SQLITE_CAUSES: dict[int, str] = {
    sqlite3.SQLITE_PERM: "access denied",
    sqlite3.SQLITE_READONLY: "cannot be written (a read-only file, folder or file system)",
    sqlite3.SQLITE_IOERR: "a disk I/O error",
    sqlite3.SQLITE_CORRUPT: "the file is damaged",
    sqlite3.SQLITE_FULL: "the disk is full",
    sqlite3.SQLITE_CANTOPEN: "cannot be opened",
    sqlite3.SQLITE_NOTADB: "not an SQLite database",
}
_LOCKED = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
#: Codes a full disk shows up as: SQLite reports a failed allocation of its
#: shared-memory file as an I/O error.
_SPACE = (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)
#: Codes an unwritable folder shows up as: SQLite makes its -wal and -shm files there.
_WRITE = (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY)


@dataclass(frozen=True)
class Target:
    """The database an engine opens, as an operator knows it."""

    #: How messages name it: an SQLite file's path, else the URL without its password.
    name: str
    #: The SQLite file, when it is one: its folder is looked at to say why.
    file: Path | None
    #: Seconds SQLite waits for another process's lock.
    busy_timeout: float


def translate(target: Target, context: ExceptionContext) -> None:
    """Raise a ``StorageError`` in place of a DBAPI error that means the database is unusable."""
    error = storage_error(context.original_exception, target)
    if error is None and isinstance(context.sqlalchemy_exception, sa.exc.OperationalError):
        # A server refusing connections, restarting or gone: worth trying again soon.
        error = DatabaseUnavailable(
            f"database {target.name}: {first_line(context.original_exception)}"
        )
    if error is not None:
        raise error from context.original_exception


def storage_error(exc: BaseException, target: Target) -> StorageError | None:
    """Say in one line why SQLite could not use the database; None if that is not why."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # an extended code keeps the primary's byte
    if code in _LOCKED:
        return DatabaseLocked(
            f"database {target.name}: locked by another process for longer than "
            f"{target.busy_timeout:g} s ({exc})"
        )
    cause = _SQLITE_CAUSES.get(code)
    if cause is None:
        return None
    return StorageError(f"database {target.name}: {_diagnose(target.file, code) or cause} ({exc})")


def _diagnose(file: Path | None, code: int) -> str | None:
    # SQLite's own words do not say which of several causes it met; the folder does.
    if file is None:
        return None
    folder = file.parent
    if code in _SPACE and _free_bytes(folder) == 0:
        return f"no space left on the disk of {folder}"
    if code in _WRITE and folder.is_dir() and not os.access(folder, os.W_OK):
        # EROFS reaches even root; SQLite keeps its -wal and -shm files beside the database.
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"its folder {folder} is on a read-only file system"
        return f"its folder {folder} is not writable"
    return None


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
