"""A real PostgreSQL server for the tests: Debian's, in a temporary folder, on loopback.

``.ci/run`` installs the ``postgresql`` package when it may (``dev.py``); the
server is started here with ``initdb`` and ``pg_ctl`` from
``/usr/lib/postgresql/<version>/bin`` (as the ``postgres`` user when the tests
run as root, since PostgreSQL refuses to run as root), trusting loopback
connections. ``tests.databases`` starts one per pytest process on first use
and stops it when the session ends; ``database()`` makes a fresh, empty
database on it for one test. Without the package the tests that need it are
skipped, saying why.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

from tests.service import free_port

#: The newest installed server's programs, if any.
BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
REASON = "PostgreSQL is not installed (.ci/run installs it: apt-get install postgresql)"


def _run(*command: str) -> None:
    # PostgreSQL refuses to run as root: CI runs as root, a developer usually not.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_user, *command], check=True, capture_output=True)


@contextlib.contextmanager
def server() -> Iterator[str]:
    """Start a throwaway server; yield its admin URL (``postgresql://postgres@...``)."""
    assert BIN is not None, REASON
    folder = Path(tempfile.mkdtemp(prefix="smart-agent-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    _run(str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    # A test server's data need not survive a power cut: no fsync, no waiting for
    # the log, no full pages in it. Room for every engine the tests keep open.
    durability = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 {durability}"
    options += " -c max_connections=300"
    pg_ctl = [str(BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log")]
    _run(*pg_ctl, "-o", options, "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        _run(*pg_ctl, "-m", "fast", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def database(admin_url: str) -> str:
    """Create an empty database on the server; return its SQLAlchemy URL."""
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return admin_url.replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
