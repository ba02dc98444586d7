"""Leases and claims shared by workers: one holder at a time, free again when it runs out.

On the database of this run (``tests.databases``); the claim race and the
migrations race need PostgreSQL's row locks and advisory locks, and run on it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agent import db as database
from agent import leases, outbox
from agent.models import Delivery, StoredEvent, StoredItem, Subscription
from tests import databases
from tests.samples import delivery_row
from tests.service import user_env

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = database.connect(databases.url(tmp_path))
    database.init(made)
    yield made
    made.dispose()


def _take(engine: Engine, owner: str, now: datetime, early: timedelta = timedelta(0)) -> bool:
    with Session(engine) as session:
        got = leases.take(session, "poll:x", owner=owner, now=now, hold=MINUTE, early=early)
        session.commit()
    return got


def test_one_holder_at_a_time_until_it_runs_out(engine: Engine) -> None:
    assert _take(engine, "a", NOW)
    assert not _take(engine, "b", NOW + MINUTE / 2)
    assert _take(engine, "a", NOW + MINUTE / 2)  # its holder renews it
    assert not _take(engine, "b", NOW + MINUTE)
    assert _take(engine, "b", NOW + MINUTE * 2)  # a died: b takes over


def test_released_it_is_free_from_the_time_given(engine: Engine) -> None:
    assert _take(engine, "a", NOW)
    with Session(engine) as session:
        assert not leases.release(session, "poll:x", owner="b", until=NOW)  # not b's
        assert leases.release(session, "poll:x", owner="a", until=NOW + MINUTE * 5)
        session.commit()
    assert not _take(engine, "b", NOW + MINUTE)
    assert _take(engine, "b", NOW + MINUTE * 4, early=MINUTE)  # a timer firing a bit early
    assert not _take(engine, "c", NOW + MINUTE * 4)


def test_a_pause_doubles_up_to_its_cap_and_resuming_forgets_it(engine: Engine) -> None:
    with Session(engine) as session:
        now, delays = NOW, list[timedelta]()
        for _ in range(9):  # each failure comes once the pause before it has ended
            now += delays[-1] if delays else timedelta(0)
            delays.append(leases.pause(session, "pause:email", now=now))
        assert leases.held(session, ["pause:email", "pause:telegram"], now=now) == {"pause:email"}
        assert leases.resume(session, "pause:email")
        assert not leases.resume(session, "pause:email")
        session.commit()
    assert [d.total_seconds() for d in delays] == [5, 10, 20, 40, 80, 160, 300, 300, 300]


def test_failures_during_a_pause_are_one_outage(engine: Engine) -> None:
    with Session(engine) as session:
        first = leases.pause(session, "pause:email", now=NOW)
        # Two more workers whose sends had started report the same outage.
        during = [
            leases.pause(session, "pause:email", now=NOW + timedelta(seconds=s)) for s in (1, 2)
        ]
        after = leases.pause(session, "pause:email", now=NOW + first)
    assert [d.total_seconds() for d in (first, *during, after)] == [5, 4, 3, 10]


def _queue(engine: Engine, subscribers: int) -> None:
    """One new event, alerted to ``subscribers`` subscriptions by e-mail."""
    with Session(engine) as session:
        item = StoredItem(source="s", key="k", kind="tender", content_hash="h",
                          first_seen_at=NOW, last_seen_at=NOW, changed_at=NOW)  # fmt: skip
        session.add(item)
        session.flush()
        event = StoredEvent(item_id=item.id or 0, type="new", dedup_key="new", created_at=NOW)
        subs = [
            Subscription(name=f"s{n}", feed_token=f"t{n}", created_at=NOW, updated_at=NOW)
            for n in range(subscribers)
        ]
        session.add_all([event, *subs])
        session.flush()
        outbox.enqueue(session, [delivery_row(s.id or 0, event.id or 0) for s in subs])
        session.commit()


@pytest.mark.skipif(databases.BACKEND is not databases.Backend.POSTGRESQL, reason="row locks")
def test_workers_claiming_at_once_are_handed_different_groups(engine: Engine) -> None:
    _queue(engine, 2)
    with Session(engine) as first, Session(engine) as second:
        mine = outbox.next_group(first, now=NOW)
        theirs = outbox.next_group(second, now=NOW)  # the first's row is locked: skipped
        assert mine is not None
        assert theirs is not None
        assert mine != theirs
        assert outbox.claim(first, mine, now=NOW, owner="a")
        assert outbox.claim(second, theirs, now=NOW, owner="b")
        first.commit()
        second.commit()
    with Session(engine) as session:
        assert outbox.next_group(session, now=NOW) is None
        owners = {d.lease_owner for d in session.exec(select(Delivery)).all()}
    assert owners == {"a", "b"}


def test_workers_started_together_migrate_a_fresh_database_once(tmp_path: Path) -> None:
    url = databases.url(tmp_path)
    (tmp_path / "config.toml").write_text(f'[agent]\ndatabase_url = "{url}"\n', encoding="utf-8")
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "agent", "init"],
            cwd=tmp_path,
            env=user_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [child.communicate(timeout=60) for child in children]
    codes = [child.returncode for child in children]
    assert codes == [0, 0, 0], outcomes
    assert sum("schema upgraded from nothing" in err for _, err in outcomes) == 1
