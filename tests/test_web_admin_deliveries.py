"""The console's delivery ledger over HTTP: filters, why a delivery matched, retry and replay.

Failures are real: the SMTP fake defers (451) or refuses the content (554) at
DATA, and the dispatcher marks the rows retrying or dead as it does in service.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

import notifiers
from agent import ledger, outbox
from agent.models import Delivery, DeliveryStatus, StoredEvent
from agent.web.admin_deliveries import PAGE_SIZE
from tests.test_web_admin_subscriptions import (
    ADMIN,
    MEMBER,
    NOW,
    STAFF_TENDER,
    Console,
    console,
    post,
)

DEFERRED = "451 4.3.0 Try again later"
REFUSED = "554 5.6.0 Message content rejected"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Console]:
    async with console(tmp_path) as running:
        yield running


async def failed(site: Console, answer: str) -> Delivery:
    """Dispatch while the mail server gives ``answer`` to every message; staff's first delivery."""
    site.mail.answers["DATA"] = answer
    await site.agent.dispatch()
    site.mail.answers.clear()
    return site.deliveries("staff")[0]


def row(site: Console, delivery_id: int | None) -> Delivery:
    with site.session() as session:
        found = session.get(Delivery, delivery_id)
    assert found is not None
    return found


@pytest.mark.parametrize("path", ["/admin/deliveries", "/admin/deliveries/1"])
def test_the_pages_are_for_admins_only(site: Console, path: str) -> None:
    anonymous = site.client(None).get(path)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == f"/login?next={path}"
    assert site.client(MEMBER).get(path).status_code == 403
    assert site.client(ADMIN).get(path).status_code == 200


@pytest.mark.parametrize("action", ["retry", "replay"])
async def test_actions_refuse_members_and_posts_without_the_csrf_token(
    site: Console, action: str
) -> None:
    delivery = await failed(site, REFUSED)
    path = f"/admin/deliveries/{delivery.id}/{action}"
    assert site.client(ADMIN).post(path).status_code == 403
    assert post(site.client(MEMBER), path, page="/orgs").status_code == 403
    assert site.client(None).post(path).status_code == 303
    assert row(site, delivery.id).status == DeliveryStatus.DEAD


async def test_the_ledger_lists_the_newest_first_and_filters(site: Console) -> None:
    await failed(site, REFUSED)
    admin = site.client()
    staff, services = site.deliveries("staff"), site.deliveries("services")
    page = admin.get("/admin/deliveries").text
    listed = [int(n) for n in re.findall(r'<a href="/admin/deliveries/(\d+)">', page)]
    assert listed == sorted([d.id or 0 for d in staff + services], reverse=True)
    assert "Failed for good" in page
    assert "554 5.6.0 Message content rejected" in page
    assert STAFF_TENDER in page
    staff_only = admin.get(f"/admin/deliveries?subscription={staff[0].subscription_id}").text
    listed = [int(n) for n in re.findall(r'<a href="/admin/deliveries/(\d+)">', staff_only)]
    assert listed == sorted([d.id or 0 for d in staff], reverse=True)
    assert "No deliveries match." in admin.get("/admin/deliveries?status=sent").text
    assert "No deliveries match." in admin.get("/admin/deliveries?channel=telegram").text
    dead = admin.get("/admin/deliveries?status=dead&channel=email").text
    assert len(re.findall(r'<a href="/admin/deliveries/\d+">', dead)) == len(staff + services)
    # nonsense filters are ignored, not an error
    assert admin.get("/admin/deliveries?status=nope&subscription=x&page=-1").status_code == 200


async def test_a_sent_delivery_says_why_it_matched_and_shows_its_receipt(site: Console) -> None:
    await site.agent.dispatch()
    delivery = site.deliveries("staff")[0]
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.receipt
    page = site.client().get(f"/admin/deliveries/{delivery.id}").text
    for reason in delivery.reasons:  # as ``smart-agent deliveries why`` prints them
        line = ledger.format_reason(reason).replace("'", "&#39;").replace('"', "&#34;")
        assert f'<code dir="auto">{line}</code>' in page
    assert "the phrase" in page  # and the sentence the subscriber read
    assert delivery.receipt.replace("<", "&lt;").replace(">", "&gt;") in page
    assert "Send again" in page
    assert "Retry now" not in page
    assert site.client().get("/admin/deliveries/999").status_code == 404


async def test_retry_makes_a_failed_delivery_due_now_as_the_cli_does(site: Console) -> None:
    delivery = await failed(site, DEFERRED)
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.next_attempt_at > NOW
    admin = site.client()
    page = f"/admin/deliveries/{delivery.id}"
    assert "Retry now" in admin.get(page).text
    answer = post(admin, f"{page}/retry", page=page)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{page}?done=retried"
    retried = row(site, delivery.id)
    assert (retried.status, retried.attempts) == (DeliveryStatus.RETRYING, 1)
    assert retried.next_attempt_at == NOW
    assert (
        "It will be tried again at the next dispatch." in admin.get(answer.headers["location"]).text
    )
    await site.agent.dispatch()
    assert row(site, delivery.id).status == DeliveryStatus.SENT
    assert "staff@ngo.example" in str(site.mail.messages[-1]["To"])


async def test_replay_queues_a_dead_delivery_again_and_it_is_sent(site: Console) -> None:
    delivery = await failed(site, REFUSED)
    assert delivery.status == DeliveryStatus.DEAD
    admin = site.client()
    page = f"/admin/deliveries/{delivery.id}"
    assert "Retry now" not in admin.get(page).text
    answer = post(admin, f"{page}/replay", page=page)
    assert answer.headers["location"] == f"{page}?done=replayed"
    replayed = row(site, delivery.id)
    assert (replayed.status, replayed.attempts, replayed.next_attempt_at) == (
        DeliveryStatus.PENDING,
        0,
        NOW,
    )
    queued = admin.get(answer.headers["location"]).text
    assert "It is queued to be sent again at the next dispatch." in queued
    assert "Waiting to be sent" in queued
    assert "Send again" not in queued
    # queued now: a second replay does nothing, and says so
    again = post(admin, f"{page}/replay", page=page)
    assert again.headers["location"] == f"{page}?done=nothing"
    await site.agent.dispatch()
    assert row(site, delivery.id).status == DeliveryStatus.SENT
    assert [str(m["To"]) for m in site.mail.messages if "staff" in str(m["To"])] == [
        "staff@ngo.example"
    ]


@pytest.mark.parametrize(("language", "word"), [("he", "נכשל סופית"), ("ar", "فشل نهائيًا")])
async def test_the_ledger_speaks_hebrew_and_arabic(site: Console, language: str, word: str) -> None:
    delivery = await failed(site, REFUSED)
    http = site.client(ADMIN, language)
    assert word in http.get("/admin/deliveries").text
    page = http.get(f"/admin/deliveries/{delivery.id}").text
    assert word in page
    assert 'dir="rtl"' in page


def test_the_ledger_is_paged(site: Console) -> None:
    # Every event on every channel for both subscriptions: more rows than a page holds.
    with site.session() as session:
        events = session.exec(select(StoredEvent.id)).all()
        rows = [
            {"subscription_id": sub_id, "event_id": event_id, "channel": channel}
            for sub_id in (site.sub("staff").id, site.sub("services").id)
            for event_id in events
            for channel in notifiers.CHANNELS
        ]
        outbox.enqueue(session, [{**r, "created_at": NOW, "next_attempt_at": NOW} for r in rows])
        session.commit()
        total = ledger.ledger_count(session, [])
    assert total > PAGE_SIZE
    admin = site.client()
    first = admin.get("/admin/deliveries").text
    assert len(re.findall(r'<a href="/admin/deliveries/\d+">', first)) == PAGE_SIZE
    assert 'rel="next"' in first
    assert 'rel="prev"' not in first
    last_page = (total - 1) // PAGE_SIZE + 1
    last = admin.get(f"/admin/deliveries?page={last_page}").text
    assert len(re.findall(r'<a href="/admin/deliveries/\d+">', last)) == total - PAGE_SIZE * (
        last_page - 1
    )
    assert 'rel="prev"' in last
    assert 'rel="next"' not in last
