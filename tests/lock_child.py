"""Another process holding the SQLite database's write lock, on command.

``python -m tests.lock_child DATABASE`` reads commands on stdin, one a line,
and answers each on stdout once done:

* ``lock``: ``BEGIN EXCLUSIVE`` (with WAL, readers go on; writers wait) → ``locked``;
* ``release``: ``COMMIT`` → ``released``;
* ``hold SECONDS``: lock, answer ``locked``, and release by itself after SECONDS.

It is how an operator's ``sqlite3`` shell, a backup or a second agent holds
the file: Python's own ``sqlite3`` module, nothing of the agent.
"""

from __future__ import annotations

import sqlite3
import sys
import threading


def main(database: str) -> None:
    """Obey stdin until it closes."""
    connection = sqlite3.connect(
        database, isolation_level=None, timeout=30, check_same_thread=False
    )
    guard = threading.Lock()

    def release() -> None:
        with guard:
            connection.execute("COMMIT")
        print("released", flush=True)  # noqa: T201

    for line in sys.stdin:
        command, *rest = line.split()
        if command in ("lock", "hold"):
            with guard:
                connection.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)  # noqa: T201
            if command == "hold":
                threading.Timer(float(rest[0]), release).start()
        elif command == "release":
            release()


if __name__ == "__main__":
    main(sys.argv[1])
