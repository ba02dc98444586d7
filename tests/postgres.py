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
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.service import free_port

#: The newest installed server's programs, if any.
BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
REASON = "PostgreSQL is not installed (.ci/run installs it: apt-get install postgresql)"


def _run(*command: str) -> None:
    # PostgreSQL refuses to run as root: CI runs as root, a developer usually not.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=60)


#: A test server's data need not survive a power cut: no fsync, no waiting for
#: the log, no full pages in it. Room for every engine the tests keep open.
FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
#: As a production server writes (a benchmark's figures must pay for it).
DURABLE = "-c max_connections=300"


@dataclass(frozen=True)
class Server:
    """One throwaway server in ``folder``, listening on 127.0.0.1:``port`` whenever it runs."""

    folder: Path
    port: int
    settings: str

    @property
    def admin_url(self) -> str:
        """The superuser's URL (``postgresql://postgres@...``), without a database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        """The server's own log."""
        return self.folder / "log"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 {self.settings}"
        self._pg_ctl("-o", options, "start")

    def stop(self) -> None:
        """Stop the server at once, as an operator's restart does (``-m fast``)."""
        self._pg_ctl("-m", "fast", "stop")

    def database(self) -> str:
        """Create an empty database; return its SQLAlchemy URL."""
        return database(self.admin_url)

    def _pg_ctl(self, *args: str) -> None:
        assert BIN is not None, REASON
        data = str(self.folder / "data")
        _run(str(BIN / "pg_ctl"), "-D", data, "-w", "-l", str(self.log), *args)


@contextlib.contextmanager
def running(settings: str = FAST) -> Iterator[Server]:
    """Make and start a throwaway server; stop and remove it at the end."""
    assert BIN is not None, REASON
    folder = Path(tempfile.mkdtemp(prefix="smart-agent-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    found = Server(folder, free_port(), settings)
    _run(str(BIN / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres")
    found.start()
    try:
        yield found
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            found.stop()  # already stopped if a test failed while it was down
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def server() -> Iterator[str]:
    """Start a throwaway server; yield its admin URL (``postgresql://postgres@...``)."""
    with running() as found:
        yield found.admin_url


def database(admin_url: str) -> str:
    """Create an empty database on the server; return its SQLAlchemy URL."""
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return admin_url.replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
