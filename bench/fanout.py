"""Benchmark: one poll's fan-out, from the watcher's batch to committed outbox rows.

Run from the repository root::

    .venv/bin/python bench/fanout.py [--subscriptions 100000] [--items 1000] [--quick]

A fresh SQLite file (WAL, as the service opens it) gets the subscriptions, with the
rules of ``bench/workload.py``'s narrow mix, compiled and stored as the service
stores them, and 2,000 earlier items of another source, which teach the index how
rare each word is, as a running service's history does. The matcher indexes
every rule once (``Matcher.sync``, timed apart: a running service has done it at
start-up). Then ONE real ``agent.pipeline.poll`` is timed, whose watcher answers
with new items: storing them and their events, matching, building one outbox row
per (subscription, event, channel) and committing it all, in one transaction.

The same rows are then inserted again, after the outbox is emptied: with one
``outbox.enqueue`` call for all of them (what the poll does), and with one INSERT
statement per row (the outbox's statement compiled once and run for each row, the
best case of per-row inserts); each in one transaction, committed. Every pass runs
on a fresh copy of the same database, and the fastest counts, as with ``timeit``:
other load on a shared machine only slows a pass down. The target (issue #10):
all the rows of a poll of 1,000 items against 10⁵ subscriptions committed in at
most 10 seconds on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: import the project from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agent import pipeline
from agent.config import AgentSettings
from agent.errors import StorageError
from agent.matching import FREQUENCY_SAMPLE, Matcher
from agent.models import Item
from bench import fanout_db, fanout_report
from bench.fanout_db import Timed
from bench.vocab import load_corpus
from bench.workload import Workload
from watchers import Batch

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "budgetkey"
#: The fixed "now" of the poll (as in ``bench/match.py``).
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
#: Every channel is configured.
CHANNELS = ("email", "telegram", "rss")
SOURCE = "fanout"


#: Timed passes, each on a fresh copy of the same database; the fastest counts.
PASSES = 3


@dataclass(frozen=True)
class Settings:
    """What to measure, with which seed, and where the database goes."""

    subscriptions: int
    items: int
    seed: int
    passes: int = PASSES
    folder: Path | None = None


@dataclass(frozen=True)
class Pass:
    """One poll on a fresh copy, then the same rows inserted the two other ways."""

    events: int
    poll: Timed
    at_once: Timed
    per_row: Timed


@dataclass(frozen=True)
class Result:
    """Everything measured in one run."""

    subscriptions: int
    items: int
    index_seconds: float
    passes: tuple[Pass, ...]

    @property
    def events(self) -> int:
        """Events the poll's items caused (``new``, and ``closing_soon`` for some)."""
        return self.passes[0].events

    @property
    def poll(self) -> Timed:
        """The fastest poll (a failed one, if any failed)."""
        return fastest(p.poll for p in self.passes)

    @property
    def at_once(self) -> Timed:
        """The fastest ``enqueue`` of all the rows in one call."""
        return fastest(p.at_once for p in self.passes)

    @property
    def per_row(self) -> Timed:
        """The fastest insert of the rows one statement each."""
        return fastest(p.per_row for p in self.passes)

    @property
    def slowest_poll(self) -> Timed:
        """The slowest poll."""
        return max((p.poll for p in self.passes), key=lambda t: t.seconds)


def fastest(runs: Iterable[Timed]) -> Timed:
    """The fastest of several runs, as ``timeit`` counts; a failure wins over any time."""
    found = list(runs)
    failed = [t for t in found if t.error is not None]
    return min(failed or found, key=lambda t: t.seconds)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from command-line arguments and print the report."""
    settings = _parse(argv)
    if settings.folder is not None:
        result = measure(settings, settings.folder)
    else:
        with tempfile.TemporaryDirectory(prefix="fanout-") as folder:
            result = measure(settings, Path(folder))
    print(fanout_report.render(result, settings.seed))
    return 0 if result.poll.error is None else 1


def _parse(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscriptions", type=_count, help="default 100,000")
    parser.add_argument("--items", type=_count, help="new items in the poll (default 1,000)")
    parser.add_argument("--quick", action="store_true", help="10,000 subscriptions, 100 items")
    parser.add_argument("--passes", type=int, default=PASSES, help="timed passes (default 3)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--folder", type=Path, help="where the database goes (default: temporary)")
    args = parser.parse_args(argv)
    return Settings(
        subscriptions=args.subscriptions or (10_000 if args.quick else 100_000),
        items=args.items or (100 if args.quick else 1_000),
        seed=args.seed,
        passes=max(1, args.passes),
        folder=args.folder,
    )


def _count(text: str) -> int:
    return int(text.replace("_", "").replace(",", ""))


def measure(settings: Settings, folder: Path) -> Result:
    """Build the database in ``folder``, index it, then time each pass on a copy of it."""
    workload = Workload(load_corpus(FIXTURES), settings.seed)
    items = [event.item for event in workload.events(settings.items, NOW)]
    queries = [draft.query() for draft in workload.drafts(settings.subscriptions)]
    history = Workload(workload.corpus, settings.seed + 1).events(FREQUENCY_SAMPLE, NOW)
    template = folder / "subscribed.db"
    db = fanout_db.create(template)
    started = time.perf_counter()
    fanout_db.subscribe(db, queries, seed=settings.seed, now=NOW - timedelta(days=30))
    fanout_db.remember(db, "history", [e.item for e in history], now=NOW - timedelta(days=1))
    _log(f"{len(queries):,} subscriptions stored in {time.perf_counter() - started:.1f} s")
    matcher = Matcher()
    start = time.perf_counter()
    with Session(db) as session:
        matcher.sync(session)
    index_seconds = time.perf_counter() - start
    _log(f"{len(matcher):,} rules indexed in {index_seconds:.1f} s")
    passes = []
    for number in range(settings.passes):
        copy = fanout_db.copy(db, template, folder / "polled.db")
        passes.append(_pass(copy, items, matcher, number + 1))
        copy.dispose()
    db.dispose()
    return Result(len(queries), len(items), index_seconds, tuple(passes))


def _pass(db: Engine, items: list[Item], matcher: Matcher, number: int) -> Pass:
    """Time the poll, then insert the rows it committed again, the two other ways."""
    agent = AgentSettings()
    poll, events = asyncio.run(timed_poll(db, items, matcher, agent))
    _log(f"pass {number}: poll: {_outcome(poll)}")
    if poll.error is None:
        rows = fanout_db.committed_rows(db)
    else:
        rows = fanout_db.expected_rows(
            db, SOURCE, items, matcher, settings=agent, channels=CHANNELS, now=NOW
        )
        events = len({row["event_id"] for row in rows})
    at_once = _insert(db, rows, per_row=False, number=number)
    return Pass(events, poll, at_once, _insert(db, rows, per_row=True, number=number))


async def timed_poll(
    db: Engine, items: list[Item], matcher: Matcher, settings: AgentSettings
) -> tuple[Timed, int]:
    """Time one real poll whose watcher answers ``items``; return it and the events it made."""
    watcher = fanout_db.ReplayWatcher(Batch(items=items, complete=False))
    async with httpx.AsyncClient() as http:
        start = time.perf_counter()
        try:
            result = await pipeline.poll(
                SOURCE,
                watcher,
                db=db,
                http=http,
                matcher=matcher,
                settings=settings,
                channels=CHANNELS,
                now=NOW,
            )
        except StorageError as exc:
            return Timed(time.perf_counter() - start, 0, str(exc)), 0
        seconds = time.perf_counter() - start
    if not result.ok:
        return Timed(seconds, 0, result.error), 0
    return Timed(seconds, result.deliveries), result.events


def _insert(db: Engine, rows: list[dict[str, Any]], *, per_row: bool, number: int) -> Timed:
    fanout_db.clear_outbox(db)
    timed = fanout_db.insert(db, rows, per_row=per_row)
    way = "one INSERT per row" if per_row else "one enqueue call"
    _log(f"pass {number}: {way}: {_outcome(timed)}")
    return timed


def _outcome(timed: Timed) -> str:
    if timed.error is not None:
        return f"failed after {timed.seconds:.1f} s: {timed.error}"
    return f"{timed.rows:,} rows in {timed.seconds:.2f} s ({timed.rows_per_second:,.0f} rows/s)"


def _log(message: str) -> None:
    print(f"[fan-out] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
