"""Three ``smart-agent worker`` processes over one PostgreSQL: every alert exactly once.

The workers are real child processes (``tests.workers``); the test only
publishes tenders at the CKAN fake and reads what reaches aiosmtpd and the
Telegram fake: each alert arrives once, each source is polled by one worker
per interval, one worker runs the Telegram listener, and all stop cleanly.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from sqlmodel import Session, col, create_engine, func, select

from agent.leases import Lease
from agent.models import Delivery
from tests.service import wait_until
from tests.workers import Cluster, cluster, message_ids, new_tenders

SUBSCRIBERS = 12
#: Subscribers by Telegram: every fourth (``tests.workers.subscribers``).
CHATS = 3
WAVES, PER_WAVE = 4, 5
SEARCH = "/api/3/action/datastore_search"


def _expected(found: Cluster) -> int:
    return WAVES * PER_WAVE * SUBSCRIBERS


def _sent_rows(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            query = select(func.count()).select_from(Delivery).where(col(Delivery.status) == "sent")
            return int(session.exec(query).one())
    finally:
        engine.dispose()


def test_three_workers_deliver_every_alert_exactly_once(tmp_path: Path, postgres_url: str) -> None:
    with cluster(tmp_path, postgres_url, subscriptions=SUBSCRIBERS) as found:
        found.start(3)
        wait_until(lambda: found.requests.total >= 2, what="the baseline poll")
        for wave in range(WAVES):
            found.publish(new_tenders(wave * PER_WAVE, PER_WAVE))
            time.sleep(1.5)
        wanted = _expected(found)
        wait_until(lambda: len(found.mailed()) >= wanted, timeout=60, what="every e-mail alert")
        wait_until(
            lambda: len(found.telegrammed()) >= WAVES * PER_WAVE * CHATS,
            timeout=60,
            what="every Telegram alert",
        )
        time.sleep(3)  # anything sent twice would arrive by now
        found.stop()
        listeners = [n for n in range(3) if "runs the channels' listeners" in found.log(n)]

    mailed, telegrammed = Counter(found.mailed()), Counter(found.telegrammed())
    assert len(mailed) == wanted
    assert set(mailed.values()) == {1}
    assert len(telegrammed) == WAVES * PER_WAVE * CHATS
    assert set(telegrammed.values()) == {1}
    ids = message_ids(found.mail)
    assert len(ids) == len(set(ids))
    assert _sent_rows(postgres_url) == wanted + WAVES * PER_WAVE * CHATS
    assert len(listeners) == 1


def test_each_source_is_polled_by_one_worker_per_interval(
    tmp_path: Path, postgres_url: str
) -> None:
    with cluster(tmp_path, postgres_url, subscriptions=2) as found:
        found.start(3)
        wait_until(lambda: found.requests.paths[SEARCH] >= 1, what="the first poll")
        first = time.monotonic()
        time.sleep(8)
        polls, elapsed = found.requests.paths[SEARCH] - 1, time.monotonic() - first
        found.stop()
        engine = create_engine(postgres_url)
        with Session(engine) as session:
            lease = session.get(Lease, "poll:datagov-tenders")
        engine.dispose()
    # Every second, one poll: three workers each polling on their own would make three.
    assert elapsed * 0.6 <= polls <= elapsed * 1.3 + 1
    assert lease is not None
    assert lease.owner is None
