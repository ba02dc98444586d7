"""The console's subscriptions over HTTP: noise, the rule editor's preview, saving, the audit log.

``console`` (used by the ledger's and the templates' tests too) runs a real
``Agent`` over a fresh database (``tests.databases``), polls the CKAN fake's
recorded 2017 tenders once (alerting on the first poll) and serves the web app; the
clock stands on 1 July 2017, so the last 30 days hold most of those tenders.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from agent import accounts, subscriptions
from agent.accounts import AuditAction, AuditEntry
from agent.config import build_config
from agent.models import Delivery, DeliveryStatus, StoredItem, Subscription
from agent.service import Agent
from agent.web import create_app
from agent.web.admin_subscriptions import PAGE_SIZE
from agent.web.admin_subscriptions_noise import noise, weeks
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan
from tests.fakes.smtp import Mailbox, smtp_in_thread

NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)
PASSWORD = "a long enough password"
ADMIN, MEMBER = "admin@ngo.example", "member@ngo.example"
#: The subscriptions made before the poll: name → (query, e-mail address).
SUBSCRIPTIONS = {
    "staff": ('"כוח אדם"', "staff@ngo.example"),
    "services": ("שירותי", "services@ngo.example"),
}
#: Titles of two recorded tenders: the first matches ``staff``; the edit swaps it for the second.
STAFF_TENDER = "מתן שירותי כוח אדם זמני בעיתות חירום"
AMBULANCE_TENDER = "מתן שירותי אמבולנס פרטי להסעת מטופלים"


@dataclass
class Console:
    """The running app, its agent and mail server."""

    agent: Agent
    url: str
    mail: Mailbox
    #: Every client made, closed when the site stops.
    clients: list[httpx.Client] = field(default_factory=list)

    def session(self) -> Session:
        return Session(self.agent.db, expire_on_commit=False)

    def client(self, email: str | None = ADMIN, language: str = "en") -> httpx.Client:
        """A browser-like client (cookies kept), logged in as ``email`` through /login."""
        http = httpx.Client(base_url=self.url, headers={"Accept-Language": language})
        self.clients.append(http)
        if email is not None:
            data = {"email": email, "password": PASSWORD, "csrf_token": token(http, "/login")}
            answer = http.post("/login", data=data)
            assert answer.status_code == 303, answer.text
        return http

    def sub(self, name: str) -> Subscription:
        with self.session() as session:
            found = subscriptions.by_name(session, name)
        assert found is not None
        return found

    def deliveries(self, name: str) -> list[Delivery]:
        sub_id = self.sub(name).id
        with self.session() as session:
            query = select(Delivery).where(Delivery.subscription_id == sub_id)
            return list(session.exec(query.order_by(col(Delivery.id))))

    def item_id(self, title: str) -> int:
        with self.session() as session:
            for row in session.exec(select(StoredItem)):
                if row.data.get("title") == title and row.id is not None:
                    return row.id
        raise AssertionError(f"no stored item {title!r}")


def token(http: httpx.Client, path: str) -> str:
    """The session's CSRF token, read off a page's form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', http.get(path).text)
    assert found is not None, path
    return found[1]


def post(http: httpx.Client, path: str, data: Any = None, *, page: str) -> httpx.Response:
    """Post a form with the session's token (read off ``page``), as its form would."""
    fields = [*(data.items() if isinstance(data, dict) else data or [])]
    return http.post(path, data=dict([*fields, ("csrf_token", token(http, page))]))


@contextlib.asynccontextmanager
async def console(folder: Path) -> AsyncIterator[Console]:
    """The agent over a fresh database, after one poll of the recorded tenders, served."""
    with serve(ckan.build_app()) as source_url, smtp_in_thread() as mail:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(folder),
                    "templates_dir": str(ROOT / "templates"),
                    "public_url": "http://alerts.example.org",
                    "signing_key": "admin-console-test-key",
                },
                "notifiers": {"email": {"host": "127.0.0.1", "port": mail.port}},
                "sources": {
                    "tenders": {"kind": "ckan", "base_url": source_url, "alert_on_first_poll": True}
                },
            },
            base_dir=folder,
        )
        async with Agent.open(config, clock=lambda: NOW) as agent:
            with Session(agent.db, expire_on_commit=False) as session:
                for email in (ADMIN, MEMBER):
                    accounts.create_user(session, email, PASSWORD, now=NOW, admin=email == ADMIN)
                for name, (query, address) in SUBSCRIPTIONS.items():
                    entry = {"name": name, "query": query, "channels": ["email"], "email": address}
                    given = subscriptions.SubscriptionInput.model_validate(entry)
                    subscriptions.save(session, given, now=NOW)
                session.commit()
            await agent.poll_all()
            with serve(create_app(agent)) as url:
                running = Console(agent, url, mail)
                try:
                    yield running
                finally:
                    for http in running.clients:
                        http.close()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Console]:
    async with console(tmp_path) as running:
        yield running


def audit(site: Console) -> list[AuditEntry]:
    with site.session() as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.id))))


@pytest.mark.parametrize(
    "path", ["/admin/subscriptions", "/admin/subscriptions/1", "/admin/subscriptions?sort=name"]
)
def test_the_pages_are_for_admins_only(site: Console, path: str) -> None:
    anonymous = site.client(None).get(path)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=/admin/subscriptions")
    assert site.client(MEMBER).get(path).status_code == 403
    assert site.client(ADMIN).get(path).status_code == 200


@pytest.mark.parametrize("action", ["preview", "save"])
def test_the_editor_refuses_members_and_posts_without_the_csrf_token(
    site: Console, action: str
) -> None:
    sub_id = site.sub("staff").id
    path = f"/admin/subscriptions/{sub_id}/{action}"
    assert site.client(ADMIN).post(path, data={"query": "אמבולנס"}).status_code == 403
    member = site.client(MEMBER)
    assert post(member, path, {"query": "אמבולנס"}, page="/orgs").status_code == 403
    anonymous = site.client(None).post(path, data={"query": "אמבולנס"})
    assert anonymous.status_code == 303
    assert site.sub("staff").rule == {"query": '"כוח אדם"'}


async def test_the_list_shows_each_subscriptions_noise_the_noisiest_first(site: Console) -> None:
    await site.agent.dispatch()
    staff, services = len(site.deliveries("staff")), len(site.deliveries("services"))
    assert 0 < staff < services
    page = site.client().get("/admin/subscriptions").text
    rows = re.findall(
        r'<th scope="row"><a href="/admin/subscriptions/\d+" dir="auto">(\w+)</a>', page
    )
    assert rows == ["services", "staff"]
    # matches per week, then alerts sent per week: all made and sent within the four weeks
    per_week = f"{round(staff / 4, 1):g}"
    assert re.search(rf">staff</a>.*?<td>{per_week}</td>\s*<td>{per_week}</td>", page, re.S)
    by_name = site.client().get("/admin/subscriptions?sort=name").text
    assert by_name.index(">services</a>") < by_name.index(">staff</a>")
    assert 'aria-sort="ascending"' in by_name


async def test_a_subscriptions_page_shows_its_weeks_and_its_rule(site: Console) -> None:
    await site.agent.dispatch()
    sub = site.sub("staff")
    page = site.client().get(f"/admin/subscriptions/{sub.id}").text
    assert '<h1 dir="auto">staff</h1>' in page
    assert "staff@ngo.example" in page
    assert 'value="&#34;כוח אדם&#34;"' in page  # the editor holds the saved rule
    assert f'href="/admin/deliveries?subscription={sub.id}"' in page
    assert site.client().get("/admin/subscriptions/999").status_code == 404


def test_the_preview_lists_what_the_edit_would_add_and_remove_and_saves_nothing(
    site: Console,
) -> None:
    sub_id = site.sub("staff").id
    admin = site.client()
    page = f"/admin/subscriptions/{sub_id}"
    answer = post(admin, f"{page}/preview", {"query": "אמבולנס"}, page=page)
    assert answer.status_code == 200
    added, removed = answer.text.split('id="added-heading"')[1].split('id="removed-heading"')
    assert f'href="/items/{site.item_id(AMBULANCE_TENDER)}" dir="auto">{AMBULANCE_TENDER}' in added
    assert f'href="/items/{site.item_id(STAFF_TENDER)}" dir="auto">{STAFF_TENDER}' in removed
    assert STAFF_TENDER not in added
    assert ">Would be added: 1<" in answer.text
    # the save button carries the edited rule; nothing is saved yet
    save_form = answer.text.split(f'action="/admin/subscriptions/{sub_id}/save"')[1]
    assert '<input type="hidden" name="query" value="אמבולנס">' in save_form.split("</form>")[0]
    assert site.sub("staff").rule == {"query": '"כוח אדם"'}
    assert audit(site) == []


def test_saving_stores_the_rule_and_writes_who_changed_it_to_the_audit_log(site: Console) -> None:
    before = site.sub("staff")
    admin = site.client()
    page = f"/admin/subscriptions/{before.id}"
    answer = post(admin, f"{page}/save", [("query", "אמבולנס"), ("kinds", "tender")], page=page)
    assert answer.status_code == 303
    assert answer.headers["location"] == page
    after = site.sub("staff")
    assert after.rule == {"query": "אמבולנס", "kinds": ["tender"]}
    assert after.compiled != before.compiled
    assert after.active
    assert after.addresses == before.addresses
    [entry] = audit(site)
    assert (entry.actor, entry.action, entry.subscription_id) == (
        ADMIN,
        AuditAction.EDITED,
        after.id,
    )
    assert entry.subject == "staff"
    assert entry.before == {"rule": {"query": '"כוח אדם"'}}
    assert entry.after == {"rule": {"query": "אמבולנס", "kinds": ["tender"]}}
    assert "Your changes are saved." in admin.get(page).text


def test_a_rule_error_is_shown_where_it_is_and_nothing_is_saved(site: Console) -> None:
    sub_id = site.sub("staff").id
    admin = site.client()
    page = f"/admin/subscriptions/{sub_id}"
    for action in ("preview", "save"):
        answer = post(admin, f"{page}/{action}", {"query": 'אמבולנס OR "כוח'}, page=page)
        assert answer.status_code == 400
        assert 'aria-invalid="true"' in answer.text
        assert "<mark>" in answer.text
        assert 'id="preview-heading"' not in answer.text
    assert site.sub("staff").rule == {"query": '"כוח אדם"'}
    assert audit(site) == []


def test_an_edit_keeps_a_paused_subscription_paused(site: Console) -> None:
    with site.session() as session:
        sub = subscriptions.by_name(session, "staff")
        assert sub is not None
        subscriptions.set_active(session, sub, False, now=NOW)
        session.commit()
    page = f"/admin/subscriptions/{sub.id}"
    admin = site.client()
    assert "Paused" in admin.get(page).text
    assert post(admin, f"{page}/save", {"query": "אמבולנס"}, page=page).status_code == 303
    assert not site.sub("staff").active
    assert site.sub("staff").rule == {"query": "אמבולנס"}


@pytest.mark.parametrize(("language", "heading"), [("he", "מינויים"), ("ar", "الاشتراكات")])
def test_the_pages_speak_hebrew_and_arabic(site: Console, language: str, heading: str) -> None:
    http = site.client(ADMIN, language)
    page = http.get("/admin/subscriptions").text
    assert f"<h1>{heading}</h1>" in page
    assert 'dir="rtl"' in page
    sub_id = site.sub("staff").id
    detail = f"/admin/subscriptions/{sub_id}"
    answer = post(http, f"{detail}/preview", {"query": "אמבולנס"}, page=detail)
    assert answer.status_code == 200
    assert AMBULANCE_TENDER in answer.text


def test_the_weeks_count_matches_once_and_alerts_sent_where_they_fell(site: Console) -> None:
    with site.session() as session:
        sub = site.sub("services")
        assert sub.id is not None
        rows = site.deliveries("services")
        # a second channel's row for the same event is one match, two alerts
        rows[0].status, rows[0].sent_at = DeliveryStatus.SENT, NOW - timedelta(days=10)
        session.add(rows[0])
        session.add(
            Delivery(
                subscription_id=sub.id,
                event_id=rows[0].event_id,
                channel="rss",
                status=DeliveryStatus.SENT,
                created_at=NOW,
                sent_at=NOW,
                next_attempt_at=NOW,
            )
        )
        session.commit()
        found = weeks(session, sub.id, now=NOW)
        counted = noise(session, now=NOW)[sub.id]
    assert [week.matches for week in found] == [0, 0, 0, len(rows)]
    assert [week.sent for week in found] == [0, 0, 1, 1]
    assert (counted.matches, counted.sent) == (len(rows), 2)


def test_a_subscription_that_is_no_longer_valid_input_says_why_and_is_not_changed(
    site: Console,
) -> None:
    # A chat that left its only channel (``subscriptions.disconnect``) has no channel.
    with site.session() as session:
        sub = subscriptions.by_name(session, "staff")
        assert sub is not None
        subscriptions.disconnect(session, sub, "email", now=NOW)
        session.commit()
    page = f"/admin/subscriptions/{sub.id}"
    admin = site.client()
    answer = post(admin, f"{page}/save", {"query": "אמבולנס"}, page=page)
    assert answer.status_code == 400
    assert "The rule was not saved" in answer.text
    assert "channels: List should have at least 1 item" in answer.text
    assert 'role="alert"' in answer.text
    assert site.sub("staff").rule == {"query": '"כוח אדם"'}
    assert audit(site) == []


def test_the_list_is_paged(site: Console) -> None:
    with site.session() as session:
        for number in range(PAGE_SIZE):
            entry = {"name": f"feed {number:02}", "query": "מכרז", "channels": ["rss"]}
            subscriptions.save(
                session, subscriptions.SubscriptionInput.model_validate(entry), now=NOW
            )
        session.commit()
    admin = site.client()
    first = admin.get("/admin/subscriptions?sort=name").text
    assert first.count('<th scope="row">') == PAGE_SIZE
    assert 'rel="next"' in first
    second = admin.get("/admin/subscriptions?sort=name&page=2").text
    assert second.count('<th scope="row">') == len(SUBSCRIPTIONS)
    assert ">staff</a>" in second
    assert 'rel="prev"' in second
