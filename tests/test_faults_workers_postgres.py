"""Three ``smart-agent worker`` processes while their PostgreSQL restarts; claims side by side.

The restart test runs its own server (``tests.pg_server``), never the
session's: stopping that one would break every other test. It prints its
figure (``pytest -s`` shows it): downtime, alerts lost, duplicates, time to
recover. The last two tests replay, in two sessions, what happens between
workers only by chance: two claiming one subscriber's group at once (their
claims deadlocked), and a resend, after a worker died mid-send, that took
the alerts queued since along (another Message-ID).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from agent import db as database
from agent import outbox
from agent.errors import StorageError
from agent.models import Delivery, StoredEvent, StoredItem, Subscription
from tests.pg_server import restartable
from tests.samples import delivery_row
from tests.service import wait_until
from tests.worker_faults import (
    StopWhenSending,
    deadlocks,
    email_pairs,
    email_tally,
    figure,
    telegram_pairs,
    telegram_tally,
    tender_titles,
)
from tests.workers import cluster, new_tenders, titles

SUBSCRIBERS = 12
WAVES, PER_WAVE = 4, 4
#: Recording a send's outcome is retried for half of it: longer than the restart.
LEASE = 'delivery_lease = "PT30S"'
#: How long the server stays stopped.
DOWN = 3.0
#: What a worker's LISTEN connection says when it is back (``agent.wakeup``).
BACK = "listening for queued alerts again"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _logged_at(log: str, what: str) -> list[str]:
    """The times (HH:MM:SS,mmm) of the log lines saying ``what``."""
    return re.findall(rf"^\S+ (\S+) \w+ [\w.]+: .*{re.escape(what)}", log, flags=re.MULTILINE)


def test_workers_outlive_a_postgresql_restart_and_lose_nothing(tmp_path: Path) -> None:
    with (
        restartable() as server,
        cluster(tmp_path, server.database(), subscriptions=SUBSCRIBERS, agent_extra=LEASE) as found,
    ):
        # The server goes while an e-mail is being accepted: its send must still be recorded.
        second = set(tender_titles(PER_WAVE, PER_WAVE))
        stop = StopWhenSending(server.stop, lambda message: bool(second & set(titles(message))))
        found.mail.on_accept = stop
        found.start(3)
        wait_until(lambda: found.requests.total >= 2, what="the baseline poll")
        found.publish(new_tenders(0, PER_WAVE))
        time.sleep(1.5)
        stop.armed = True
        found.publish(new_tenders(PER_WAVE, PER_WAVE))
        wait_until(stop.done.is_set, what="the server stopped in the middle of a send")
        found.publish(new_tenders(2 * PER_WAVE, PER_WAVE))
        time.sleep(DOWN)
        server.start()
        back = time.monotonic()
        found.publish(new_tenders(3 * PER_WAVE, PER_WAVE))
        published = tender_titles(0, WAVES * PER_WAVE)
        mailed = email_pairs(SUBSCRIBERS, published)
        chats = telegram_pairs(SUBSCRIBERS, published)
        wait_until(
            lambda: email_tally(found, mailed).lost == 0 and telegram_tally(found, chats).lost == 0,
            timeout=60,
            what="every alert after the restart",
        )
        recovered = found.smtp.arrived[-1] - back
        wait_until(
            lambda: all(BACK in found.log(n) for n in range(3)), what="every worker listening again"
        )
        time.sleep(3)  # anything sent twice would arrive by now
        alive = found.alive()
        logs = [found.log(n) for n in range(3)]
        found.stop()

    by_mail, by_telegram = email_tally(found, mailed), telegram_tally(found, chats)
    errors = [line for log in logs for line in log.splitlines() if " ERROR " in line]
    figure(
        "PostgreSQL stopped and started again under load (3 workers, its own server)",
        {
            "downtime (stop → accepting again)": f"{back - stop.at:.1f} s",
            "alerts expected (e-mail + Telegram)": by_mail.expected + by_telegram.expected,
            "alerts lost": by_mail.lost + by_telegram.lost,
            "duplicates (all recognisable)": by_mail.duplicates + by_telegram.duplicates,
            "time to recover (server back → last e-mail)": f"{recovered:.1f} s",
            "workers still running (the same processes)": f"{len(alive)} of 3",
            "error lines logged (one line each)": len(errors),
            "of which dispatch runs ended by a deadlock": deadlocks(found),
            "workers that waited for it to record a send": sum(
                log.count("recording deliveries") > 0 for log in logs
            ),
            "LISTEN lost / back at": "; ".join(
                f"{','.join(_logged_at(log, 'cannot listen'))} → {','.join(_logged_at(log, BACK))}"
                for log in logs
            ),
        },
    )
    assert alive == [0, 1, 2], "no worker died: the processes started are still running"
    assert by_mail.lost == by_telegram.lost == 0
    assert by_mail.unrecognised == by_telegram.unrecognised == 0
    for log in logs:
        assert "cannot listen for queued alerts" in log
        assert BACK in log
    # The worker whose send the stop cut short waited for the server to record it.
    assert any("recording deliveries" in log for log in logs)


def _one_subscriber(engine: Engine, *due: datetime) -> tuple[int, list[int]]:
    """One subscriber with an e-mail alert due at each of ``due``; its id and the rows' ids."""
    with Session(engine) as session:
        sub = Subscription(name="ngo", feed_token="t", created_at=NOW, updated_at=NOW)
        items = [
            StoredItem(
                source="s",
                key=str(n),
                kind="tender",
                content_hash="h",
                first_seen_at=NOW,
                last_seen_at=NOW,
                changed_at=NOW,
            )
            for n in range(len(due))
        ]
        session.add_all([sub, *items])
        session.flush()
        events = [
            StoredEvent(item_id=item.id or 0, type="new", dedup_key="new", created_at=NOW)
            for item in items
        ]
        session.add_all(events)
        session.flush()
        rows = [
            delivery_row(sub.id or 0, e.id or 0, at=at) for e, at in zip(events, due, strict=True)
        ]
        outbox.enqueue(session, rows)
        session.commit()
        ids = session.exec(select(Delivery.id).order_by(col(Delivery.id))).all()
        return sub.id or 0, [i for i in ids if i is not None]


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    """The agent's engine on a fresh database of the session's server."""
    made = database.connect(postgres_url)
    database.init(made)
    yield made
    made.dispose()


def test_two_workers_asking_at_once_are_never_handed_one_subscribers_group(
    engine: Engine,
) -> None:
    # Locking the oldest row alone handed the second worker the same group through
    # its next row, and the two claims deadlocked ("deadlock detected" in the logs).
    _one_subscriber(engine, NOW, NOW)
    failed: list[StorageError] = []
    with Session(engine) as first, Session(engine) as second:
        mine = outbox.next_group(first, now=NOW)
        theirs = outbox.next_group(second, now=NOW)
        assert mine is not None

        def claim_mine() -> None:
            try:
                outbox.claim(first, mine, now=NOW, owner="a")
                first.commit()
            except StorageError as exc:
                failed.append(exc)

        # As two worker processes would: both claims at once.
        claiming = threading.Thread(target=claim_mine)
        claiming.start()
        if theirs is not None:
            try:
                outbox.claim(second, theirs, now=NOW, owner="b")
                second.commit()
            except StorageError as exc:
                failed.append(exc)
        claiming.join(timeout=30)
    assert failed == []
    assert theirs != mine


def test_a_resend_after_a_worker_died_goes_out_alone_and_keeps_its_message_id(
    engine: Engine,
) -> None:
    # Claimed with the newer alert, it went out as another message, with another
    # Message-ID, repeating an alert the reader already had.
    later = NOW + timedelta(minutes=1)
    sub, (first, second) = _one_subscriber(engine, NOW, later)
    with Session(engine) as session:
        sent = _ids(outbox.claim(session, (sub, "email"), now=NOW, owner="died-mid-send"))
        session.commit()
    # Its lease over, the dead run's row is claimed again; a newer alert is due by then.
    after = NOW + outbox.LEASE + timedelta(minutes=1)
    with Session(engine) as session:
        resent = _ids(outbox.claim(session, (sub, "email"), now=after, owner="b"))
        session.commit()
        then = _ids(outbox.claim(session, (sub, "email"), now=after, owner="c"))
    assert sent == [first]
    # The Message-ID is made of the carried rows' tokens: the same rows, the same ID.
    assert resent == [first]
    assert then == [second]


def _ids(claimed: list[outbox.Claimed]) -> list[int | None]:
    return [c.delivery.id for c in claimed]
