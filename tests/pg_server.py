"""A PostgreSQL server of one test's own, which the test can stop and start again.

``tests.postgres`` starts the session's shared server; a test that takes its
server away must not take everyone else's. ``restartable()`` starts one the
same way (Debian's ``initdb``/``pg_ctl`` from ``tests.postgres.BIN``, as the
``postgres`` user when run as root, trusting loopback, fsync off) in a folder
of its own, on a fixed port, and yields a ``PgServer`` whose ``stop()`` and
``start()`` a test calls while clients are connected.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import postgres
from tests.service import free_port


def _run(*command: str) -> None:
    # PostgreSQL refuses to run as root: CI runs as root, a developer usually not.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class PgServer:
    """One server in ``folder``, listening on 127.0.0.1:``port`` whenever it runs."""

    bin: Path
    folder: Path
    port: int

    @property
    def admin_url(self) -> str:
        """The superuser's URL (``postgresql://postgres@...``), without a database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        """The server's own log."""
        return self.folder / "log"

    def _pg_ctl(self, *args: str) -> None:
        data = str(self.folder / "data")
        _run(str(self.bin / "pg_ctl"), "-D", data, "-w", "-l", str(self.log), *args)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        # fsync off: a test server's data need not survive a power cut, and it is faster.
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "start")

    def stop(self) -> None:
        """Stop the server at once, as an operator's restart does (``-m fast``)."""
        self._pg_ctl("-m", "fast", "stop")

    def database(self) -> str:
        """Create an empty database; return its SQLAlchemy URL."""
        return postgres.database(self.admin_url)


@contextlib.contextmanager
def restartable() -> Iterator[PgServer]:
    """Start a throwaway server of this test's own; stop it and remove it at the end."""
    if postgres.BIN is None:
        pytest.skip(postgres.REASON)
    folder = Path(tempfile.mkdtemp(prefix="smart-agent-pg-own-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    server = PgServer(postgres.BIN, folder, free_port())
    _run(str(server.bin / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres")
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()  # already stopped if the test failed while it was down
        shutil.rmtree(folder, ignore_errors=True)
