"""The outbox: idempotent enqueue, leases, backoff, dead rows and replay."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agent import db as database
from agent import outbox
from agent.errors import DeliveryError, PermanentDeliveryError, RateLimited
from agent.models import Delivery, StoredEvent, StoredItem, Subscription
from tests import databases
from tests.conftest import NOW
from tests.samples import delivery_row


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = database.connect(databases.url(tmp_path))
    database.init(engine)
    yield engine
    engine.dispose()


def seed(engine: Engine) -> tuple[int, int]:
    """One subscription and one event; return their ids."""
    with Session(engine) as session:
        sub = Subscription(name="ngo", feed_token="t", created_at=NOW, updated_at=NOW)
        item = StoredItem(
            source="s",
            key="k",
            kind="tender",
            content_hash="h",
            first_seen_at=NOW,
            last_seen_at=NOW,
            changed_at=NOW,
        )
        session.add(sub)
        session.add(item)
        session.flush()
        assert item.id is not None
        event = StoredEvent(item_id=item.id, type="new", dedup_key="new", created_at=NOW)
        session.add(event)
        session.commit()
        assert sub.id is not None
        assert event.id is not None
        return sub.id, event.id


def test_enqueue_twice_keeps_one_row_per_subscription_event_and_channel(engine: Engine) -> None:
    sub_id, event_id = seed(engine)
    with Session(engine) as session:
        assert (
            outbox.enqueue(
                session, [delivery_row(sub_id, event_id), delivery_row(sub_id, event_id, "rss")]
            )
            == 2
        )
        assert outbox.enqueue(session, [delivery_row(sub_id, event_id)]) == 0
        session.commit()
        assert len(session.exec(select(Delivery)).all()) == 2


def claim(session: Session, now: datetime, owner: str = "run-a") -> list[outbox.Claimed]:
    """Claim every due group for ``owner``, as a dispatch run does one at a time."""
    claimed = []
    for group in outbox.due_groups(session, now=now):
        claimed += outbox.claim(session, group, now=now, owner=owner)
    return claimed


def test_claimed_rows_are_leased_and_not_claimed_again_until_the_lease_ends(
    engine: Engine,
) -> None:
    sub_id, event_id = seed(engine)
    with Session(engine) as session:
        outbox.enqueue(session, [delivery_row(sub_id, event_id)])
        assert len(claim(session, NOW)) == 1
        session.commit()
    with Session(engine) as session:
        assert claim(session, NOW + timedelta(minutes=1), "run-b") == []
        # A crash mid-send: after the lease the row is due again, never lost.
        assert len(claim(session, NOW + outbox.LEASE, "run-b")) == 1


def test_a_run_whose_lease_ended_cannot_mark_a_row_another_run_now_owns(engine: Engine) -> None:
    sub_id, event_id = seed(engine)
    with Session(engine) as session:
        outbox.enqueue(session, [delivery_row(sub_id, event_id)])
        [slow] = claim(session, NOW, "slow")
        [fast] = claim(session, NOW + outbox.LEASE, "fast")
        ids = [fast.delivery.id or 0]
        assert outbox.mark_sent(session, ids, owner="slow", now=NOW, receipt="late") == 0
        error = DeliveryError("late failure")
        assert outbox.mark_failed(session, ids, error, owner="slow", now=NOW, max_attempts=1) == 0
        assert outbox.mark_sent(session, ids, owner="fast", now=NOW, receipt="<m@x>") == 1
        session.commit()
        delivery = session.get(Delivery, ids[0])
        assert delivery is not None
        session.refresh(delivery)
        assert (delivery.status, delivery.receipt, delivery.attempts) == ("sent", "<m@x>", 1)
        assert slow.delivery.id == fast.delivery.id


def test_failures_back_off_then_die_and_replay_revives_them(engine: Engine) -> None:
    sub_id, event_id = seed(engine)
    down = DeliveryError("down")
    with Session(engine) as session:
        outbox.enqueue(session, [delivery_row(sub_id, event_id)])
        [claimed] = claim(session, NOW)
        ids = [claimed.delivery.id or 0]
        assert outbox.mark_failed(session, ids, down, owner="run-a", now=NOW, max_attempts=2) == 0
        delivery = session.get(Delivery, ids[0])
        assert delivery is not None
        assert delivery.status == "retrying"
        assert delivery.next_attempt_at == NOW + timedelta(minutes=1)
        claim(session, NOW + timedelta(minutes=1), "run-b")
        assert outbox.mark_failed(session, ids, down, owner="run-b", now=NOW, max_attempts=2) == 1
        assert delivery.status == "dead"
        assert outbox.replay(session, ids, now=NOW) == 1
        assert delivery.status == "pending"
        assert delivery.attempts == 0


def test_a_rate_limit_waits_without_using_up_attempts(engine: Engine) -> None:
    sub_id, event_id = seed(engine)
    with Session(engine) as session:
        outbox.enqueue(session, [delivery_row(sub_id, event_id)])
        now = NOW
        for _ in range(20):
            [claimed] = claim(session, now)
            ids = [claimed.delivery.id or 0]
            error = RateLimited("429", retry_after=30)
            assert (
                outbox.mark_failed(session, ids, error, owner="run-a", now=now, max_attempts=2) == 0
            )
            now += timedelta(seconds=30)
        assert claimed.delivery.status == "retrying"
        assert claimed.delivery.attempts == 0


def test_permanent_errors_die_at_once(engine: Engine) -> None:
    sub_id, event_id = seed(engine)
    with Session(engine) as session:
        outbox.enqueue(session, [delivery_row(sub_id, event_id)])
        [claimed] = claim(session, NOW)
        error = PermanentDeliveryError("bot was blocked by the user")
        ids = [claimed.delivery.id or 0]
        assert outbox.mark_failed(session, ids, error, owner="run-a", now=NOW, max_attempts=8) == 1


def test_an_inactive_subscription_is_never_claimed_and_cancel_marks_its_queue(
    engine: Engine,
) -> None:
    sub_id, event_id = seed(engine)
    with Session(engine) as session:
        outbox.enqueue(
            session, [delivery_row(sub_id, event_id), delivery_row(sub_id, event_id, "rss")]
        )
        sub = session.get(Subscription, sub_id)
        assert sub is not None
        sub.active = False
        session.add(sub)
        session.commit()
        assert claim(session, NOW + timedelta(days=7)) == []
        assert outbox.cancel(session, sub_id, reason="unsubscribed") == 2
        session.commit()
        statuses = {d.status for d in session.exec(select(Delivery)).all()}
    assert statuses == {"cancelled"}


@pytest.mark.parametrize(
    ("error", "attempts", "delay"),
    [
        pytest.param(
            RateLimited("429", retry_after=30),
            1,
            timedelta(seconds=30),
            id="rate limited waits as long as the channel asked",
        ),
        pytest.param(DeliveryError("x"), 1, timedelta(minutes=1), id="first retry after a minute"),
        pytest.param(DeliveryError("x"), 4, timedelta(minutes=8), id="backoff doubles"),
        pytest.param(DeliveryError("x"), 30, outbox.BACKOFF_CAP, id="backoff is capped"),
    ],
)
def test_retry_delay(error: DeliveryError, attempts: int, delay: timedelta) -> None:
    assert outbox.retry_delay(error, attempts) == delay


JERUSALEM_MORNING = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # 08:00 in Jerusalem (UTC+2)


@pytest.mark.parametrize(
    ("cadence", "now", "due"),
    [
        pytest.param("immediate", NOW, NOW, id="immediate is now"),
        pytest.param(
            "daily",
            datetime(2026, 11, 23, 5, 0, tzinfo=UTC),
            JERUSALEM_MORNING,
            id="daily before eight goes out at eight the same day",
        ),
        pytest.param(
            "daily",
            NOW,
            JERUSALEM_MORNING + timedelta(days=1),
            id="daily after eight goes out tomorrow at eight",
        ),
        pytest.param(
            "weekly",
            NOW,
            datetime(2026, 11, 29, 6, 0, tzinfo=UTC),
            id="weekly goes out on Sunday at eight",
        ),
    ],
)
def test_due_at(cadence: str, now: datetime, due: datetime) -> None:
    assert outbox.due_at(cadence, now, zone="Asia/Jerusalem", hour=8) == due


@pytest.mark.sqlite_only("sets SQLite's own limit on parameters")
def test_a_poll_with_more_rows_than_sqlite_has_parameters_is_queued(engine: Engine) -> None:
    sub_id, _ = seed(engine)
    with Session(engine) as session:
        for n in range(2, 4_001):
            event = StoredEvent(item_id=1, type="new", dedup_key=f"new-{n}", created_at=NOW)
            session.add(event)
        session.commit()
        ids = [e.id or 0 for e in session.exec(select(StoredEvent)).all()]
    with engine.connect() as connection:
        # A standard SQLite build's limit: one INSERT of every row's values would not fit.
        raw = connection.connection.dbapi_connection
        assert raw is not None
        raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
        with Session(bind=connection) as session:
            assert outbox.enqueue(session, [delivery_row(sub_id, event) for event in ids]) == 4_000
            assert outbox.enqueue(session, [delivery_row(sub_id, event) for event in ids]) == 0
            session.commit()
