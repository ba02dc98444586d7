"""The soak benchmark's probe: the workers' memory and the database's size, sampled over time.

One thread samples every few seconds: each worker's resident set and CPU time
(psutil), the machine's load average,
``pg_database_size``, the sizes of the three tables that grow (items, events,
deliveries) and their row counts, the outbox by state, and the newest delivery
id (ids are never reused, so it counts every delivery ever queued, pruned or not).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil
import psycopg

#: The states a delivery is still to be sent from.
WAITING = ("pending", "retrying", "sending")

_SIZES = """
SELECT pg_database_size(current_database()),
       pg_total_relation_size('item'), pg_total_relation_size('event'),
       pg_total_relation_size('delivery'),
       (SELECT count(*) FROM item), (SELECT count(*) FROM event),
       (SELECT coalesce(max(id), 0) FROM delivery)
"""
_OUTBOX = "SELECT status, coalesce(rolled_over, false), count(*) FROM delivery GROUP BY 1, 2"


@dataclass(frozen=True)
class Sample:
    """The state at one instant."""

    #: Unix time.
    t: float
    #: Each worker's resident set in bytes; None once it has exited.
    rss: tuple[int | None, ...]
    db_bytes: int
    item_bytes: int
    event_bytes: int
    delivery_bytes: int
    items: int
    events: int
    #: The newest delivery id: how many deliveries were ever queued.
    newest_delivery: int
    #: Delivery rows by state; ``held`` are rolled over to a digest by the hourly cap.
    outbox: dict[str, int]
    #: Each worker's CPU time so far (user and system), seconds.
    cpu: tuple[float | None, ...] = ()
    #: The machine's load average over the last minute (other work slows the workers too).
    load: float = 0.0

    @property
    def deliveries(self) -> int:
        """Delivery rows present."""
        return sum(self.outbox.values())

    @property
    def waiting(self) -> int:
        """Rows still to be sent now (those held for a digest are not)."""
        return sum(n for state, n in self.outbox.items() if state in WAITING)


def take(connection: psycopg.Connection[tuple[Any, ...]], pids: Sequence[int | None]) -> Sample:
    """Sample the database and the workers now."""
    found = connection.execute(_SIZES).fetchone()
    assert found is not None
    db, item, event, delivery, items, events, newest = (int(value) for value in found)
    outbox: dict[str, int] = {}
    for status, rolled, count in connection.execute(_OUTBOX):
        key = "held" if rolled and status in WAITING else str(status)
        outbox[key] = outbox.get(key, 0) + int(count)
    rss, cpu = zip(*(_usage(pid) for pid in pids), strict=True) if pids else ((), ())
    return Sample(
        time.time(), tuple(rss), db, item, event, delivery, items, events, newest, outbox,
        tuple(cpu), os.getloadavg()[0],
    )  # fmt: skip


def wait_for_baseline(url: str, sources: int, *, timeout: float) -> None:
    """Wait until ``sources`` sources have their silent baseline (their first poll)."""
    deadline = time.time() + timeout
    with psycopg.connect(url, autocommit=True) as connection:
        while time.time() < deadline:
            found = connection.execute("SELECT count(*) FROM source_state WHERE baseline_done")
            row = found.fetchone()
            if row is not None and row[0] >= sources:
                return
            time.sleep(1)
    raise RuntimeError("the workers did not poll every source within the time allowed")


def _usage(pid: int | None) -> tuple[int | None, float | None]:
    """A process's resident set and CPU seconds; None for both once it has gone."""
    if pid is None:
        return None, None
    try:
        process = psutil.Process(pid)
        times = process.cpu_times()
        return int(process.memory_info().rss), float(times.user + times.system)
    except psutil.NoSuchProcess:
        return None, None


@dataclass
class Probe:
    """Samples in a thread, every ``every`` seconds, until stopped."""

    url: str
    pids: Callable[[], Sequence[int | None]]
    every: float = 5.0
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sampling."""
        self._thread = threading.Thread(target=self._run, name="soak-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def latest(self) -> Sample | None:
        """The newest sample, if any."""
        return self.samples[-1] if self.samples else None

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            while True:
                self.samples.append(take(connection, self.pids()))
                if self._stop.wait(self.every):
                    return
