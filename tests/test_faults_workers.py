"""Three ``smart-agent worker``s over one PostgreSQL: a worker killed, SMTP away, a source down.

Real child processes (``tests.workers``), real aiosmtpd (``tests.smtp_switch``)
and the Telegram fake. Each test prints its figure (``pytest -s`` shows it):
alerts expected, delivered, lost, duplicates, and how long recovery took.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, create_engine, select

from agent.models import Delivery
from tests.fakes import ckan, telegram
from tests.service import wait_until
from tests.worker_faults import (
    KillMidSend,
    deadlocks,
    email_pairs,
    email_tally,
    figure,
    telegram_pairs,
    telegram_tally,
    tender_titles,
)
from tests.workers import Cluster, cluster, message_ids, new_tenders, titles

SUBSCRIBERS = 12
WAVES, PER_WAVE = 3, 4
#: A resend comes this long after its worker died (``[agent] delivery_lease``).
SHORT_LEASE = 'delivery_lease = "PT5S"'
#: How long the SMTP server stays away.
OUTAGE = 6.0


def _published(waves: int = WAVES) -> list[str]:
    return tender_titles(0, waves * PER_WAVE)


def test_a_worker_killed_mid_send_loses_nothing_and_its_resend_keeps_its_message_id(
    tmp_path: Path, postgres_url: str
) -> None:
    with cluster(
        tmp_path, postgres_url, subscriptions=SUBSCRIBERS, agent_extra=SHORT_LEASE
    ) as found:
        last = set(tender_titles((WAVES - 1) * PER_WAVE, PER_WAVE))
        killer = KillMidSend(found, lambda message: bool(last & set(titles(message))))
        found.mail.on_accept = killer
        found.start(3)
        wait_until(lambda: found.requests.total >= 2, what="the baseline poll")
        for wave in range(WAVES):
            # Only the last wave's e-mails are shot at: no poll is left to hold up.
            killer.armed = wave == WAVES - 1
            found.publish(new_tenders(wave * PER_WAVE, PER_WAVE))
            time.sleep(1.5)
        wait_until(killer.killed.is_set, what="a worker killed in the middle of a send")
        mailed = email_pairs(SUBSCRIBERS, _published())
        chats = telegram_pairs(SUBSCRIBERS, _published())
        wait_until(
            lambda: (
                message_ids(found.mail).count(killer.message_id) >= 2
                and email_tally(found, mailed).lost == 0
                and telegram_tally(found, chats).lost == 0
            ),
            timeout=45,
            what="every alert, and the killed worker's e-mail sent again",
        )
        time.sleep(3)  # anything sent twice more would arrive by now
        survivors = found.alive()
        found.stop()

    ids = message_ids(found.mail)
    copies = [n for n, found_id in enumerate(ids) if found_id == killer.message_id]
    recovered = found.smtp.arrived[copies[1]] - killer.at
    by_mail, by_telegram = email_tally(found, mailed), telegram_tally(found, chats)
    killed_alerts = len(titles(found.mail.messages[copies[0]]))
    figure(
        "A worker SIGKILLed in the middle of a send (3 workers, delivery_lease 5 s)",
        {
            "alerts expected (e-mail + Telegram)": by_mail.expected + by_telegram.expected,
            "alerts delivered": by_mail.delivered + by_telegram.delivered,
            "alerts lost": by_mail.lost + by_telegram.lost,
            "duplicates (e-mail, same Message-ID)": by_mail.duplicates,
            "duplicates not recognisable": by_mail.unrecognised + by_telegram.unrecognised,
            "duplicates (Telegram)": by_telegram.duplicates,
            "killed worker": f"worker-{killer.victim} (the other two kept running)",
            "time to recover (kill → resend)": f"{recovered:.1f} s",
            "dispatch runs ended by a deadlock": deadlocks(found),
        },
    )
    assert survivors == [n for n in range(3) if n != killer.victim]
    assert by_mail.lost == by_telegram.lost == 0
    assert len(copies) == 2, "the killed worker's e-mail goes out exactly once more"
    # Its other sends under way (up to send_concurrency) may have been accepted
    # too: each goes out once more, every copy with its first's Message-ID.
    assert by_mail.duplicates >= killed_alerts
    assert by_mail.unrecognised == 0
    assert max(Counter(ids).values()) == 2
    assert by_telegram.unrecognised == 0
    # The lease (5 s from the claim, just before the kill) runs out, then the next
    # dispatch run (every 2 s) resends.
    assert 3.5 <= recovered <= 15.0


def _email_rows(database_url: str) -> list[Delivery]:
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Delivery).where(col(Delivery.channel) == "email")))
    finally:
        engine.dispose()


def _waiting(database_url: str) -> int:
    return sum(1 for row in _email_rows(database_url) if row.status != "sent")


def _out_of_order(found_messages: list[tuple[str, str]], database_url: str) -> list[str]:
    """Recipients whose e-mails arrived out of the order their alerts were made."""
    made: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for row in _email_rows(database_url):
        if row.receipt is not None and row.id is not None:
            made[email.utils.unquote(row.receipt)].append((row.created_at, row.id))
    latest: dict[str, tuple[datetime, int]] = {}
    wrong = []
    for to, message_id in found_messages:
        rows = made[message_id]
        assert rows, f"no delivery recorded {message_id} as its receipt"
        if to in latest and min(rows) < latest[to]:
            wrong.append(to)
        latest[to] = max(rows)
    return wrong


def test_smtp_down_then_back_delivers_everything_once_and_in_order(
    tmp_path: Path, postgres_url: str
) -> None:
    with cluster(tmp_path, postgres_url, subscriptions=SUBSCRIBERS) as found:
        found.start(3)
        wait_until(lambda: found.requests.total >= 2, what="the baseline poll")
        found.publish(new_tenders(0, PER_WAVE))
        before = email_pairs(SUBSCRIBERS, tender_titles(0, PER_WAVE))
        wait_until(lambda: before <= set(found.mailed()), what="the first wave, before the outage")
        went = time.monotonic()
        found.smtp.down()
        for wave in range(1, WAVES):
            found.publish(new_tenders(wave * PER_WAVE, PER_WAVE))
            time.sleep(1.5)
        later = (WAVES - 1) * PER_WAVE * SUBSCRIBERS
        wait_until(lambda: _waiting(found.database_url) == later, what="every alert queued")
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - went)))
        waiting = _waiting(found.database_url)
        came_back = time.monotonic()
        found.smtp.up()
        mailed = email_pairs(SUBSCRIBERS, _published())
        chats = telegram_pairs(SUBSCRIBERS, _published())
        wait_until(
            lambda: email_tally(found, mailed).lost == 0 and telegram_tally(found, chats).lost == 0,
            timeout=60,
            what="every alert after the outage",
        )
        drained = found.smtp.arrived[-1] - came_back
        time.sleep(3)  # anything sent twice would arrive by now
        paused = [n for n in range(3) if "email cannot be reached" in found.log(n)]
        found.stop()

    by_mail, by_telegram = email_tally(found, mailed), telegram_tally(found, chats)
    arrivals = [
        (str(m["To"]), mid)
        for m, mid in zip(found.mail.messages, message_ids(found.mail), strict=True)
    ]
    wrong = _out_of_order(arrivals, found.database_url)
    figure(
        "The SMTP server away, then back on the same port (3 workers)",
        {
            "outage": f"{came_back - went:.1f} s",
            "e-mail alerts waiting when it came back": waiting,
            "time to drain after it came back": f"{drained:.1f} s",
            "alerts expected (e-mail + Telegram)": by_mail.expected + by_telegram.expected,
            "alerts lost": by_mail.lost + by_telegram.lost,
            "duplicates": by_mail.duplicates + by_telegram.duplicates,
            "recipients served out of order": len(wrong),
            "workers that paused e-mail": len(paused),
            "dispatch runs ended by a deadlock": deadlocks(found),
        },
    )
    assert waiting == later
    assert by_mail.lost == by_telegram.lost == 0
    assert by_mail.duplicates == by_telegram.duplicates == 0
    assert wrong == []
    assert paused


OPS, OPS_CHAT = "ops@ngo.example", "-1009876543210"
#: The admins are told after three failed polls in a row, by e-mail and by Telegram.
ADMIN_ALERTS = f"""
[agent.admin_alerts]
after = 3
email = "{OPS}"
telegram_chat_id = "{OPS_CHAT}"
"""
SEARCH = "/api/3/action/datastore_search"
TOLD = re.compile(r"admins told that source datagov-tenders is (\w+)")


def test_a_failing_source_is_told_to_the_admins_once_by_one_of_three_workers(
    tmp_path: Path, postgres_url: str
) -> None:
    with cluster(tmp_path, postgres_url, subscriptions=1, agent_extra=ADMIN_ALERTS) as found:
        found.source.app = ckan.build_app(fail="500")
        found.start(3)
        wait_until(
            lambda: _to_admins(found) == (1, 1), timeout=30, what="the admins' alert, both ways"
        )
        failed_polls = found.requests.paths[SEARCH]
        time.sleep(3)  # more failed polls: no second alert
        failed_polls = found.requests.paths[SEARCH] - failed_polls
        at_failure = _to_admins(found)
        found.source.app = ckan.build_app(found.records)
        wait_until(lambda: _to_admins(found) == (2, 2), timeout=30, what="'recovered', both ways")
        time.sleep(3)  # a second 'recovered' would arrive by now
        told = [TOLD.findall(found.log(n)) for n in range(3)]
        found.stop()

    subjects = [str(m["Subject"]) for m in found.mail.messages if m["To"] == OPS]
    figure(
        "A source failing 3 times in a row, 3 workers (after = 3)",
        {
            "failed polls after the alert": failed_polls,
            "alerts to the admins (e-mail, Telegram)": at_failure,
            "'recovered' messages (e-mail, Telegram)": tuple(
                n - m for n, m in zip(_to_admins(found), at_failure, strict=True)
            ),
            "workers that sent (failing / recovered)": (
                sum("failing" in t for t in told),
                sum("recovered" in t for t in told),
            ),
        },
    )
    assert at_failure == (1, 1)
    assert _to_admins(found) == (2, 2)
    assert "נכשל" in subjects[0]
    assert "עונה שוב" in subjects[1]
    assert sorted(state for t in told for state in t) == ["failing", "recovered"]
    assert failed_polls >= 2


def _to_admins(found: Cluster) -> tuple[int, int]:
    """How many messages reached the admins: (by e-mail, by Telegram)."""
    mails = sum(1 for m in list(found.mail.messages) if m["To"] == OPS)
    return mails, len(telegram.texts(found.bot, OPS_CHAT))
