"""Organisations over HTTP: who may see and change what, the log of every change, CSRF."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from agent import accounts, organisations, subscriptions
from agent.accounts import AuditAction, AuditEntry, Membership, Role
from agent.config import build_config
from agent.models import Subscription
from agent.service import Agent
from agent.web import create_app
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PASSWORD = "a long enough password"
ADMIN, OWNER, EDITOR, VIEWER, STRANGER = (
    f"{who}@ngo.example" for who in ("admin", "owner", "editor", "viewer", "stranger")
)
TEAM_LIST = "welfare-team@lists.ngo.example"


@dataclass
class Clock:
    """The agent's clock; each change moves it on a minute, so the log has an order."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def tick(self) -> None:
        self.now += timedelta(minutes=1)


@dataclass
class Site:
    agent: Agent
    url: str
    clock: Clock
    ids: dict[str, int] = field(default_factory=dict)

    def session(self) -> Session:
        return Session(self.agent.db, expire_on_commit=False)

    @contextlib.contextmanager
    def client(self, email: str | None = None) -> Iterator[httpx.Client]:
        """A browser-like client (cookies kept), logged in as ``email`` through /login."""
        with httpx.Client(base_url=self.url, headers={"Accept-Language": "en"}) as http:
            if email is not None:
                answer = http.post(
                    "/login",
                    data={"email": email, "password": PASSWORD, "csrf_token": token(http)},
                )
                assert answer.status_code == 303, answer.text
            yield http

    def log(self) -> list[AuditEntry]:
        with self.session() as session:
            found = session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
            return list(found)

    def shared(self, name: str) -> Subscription:
        with self.session() as session:
            sub = subscriptions.by_name(session, name)
        assert sub is not None
        return sub


def token(http: httpx.Client, path: str = "/login") -> str:
    """The session's CSRF token, read off a page's form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', http.get(path).text)
    assert found is not None
    return found[1]


def post(http: httpx.Client, path: str, data: dict[str, Any] | None = None) -> httpx.Response:
    """Post a form with the session's token, as the page's form would."""
    return http.post(path, data={**(data or {}), "csrf_token": token(http, "/orgs")})


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    clock = Clock()
    with serve(ckan.build_app()) as source_url:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(tmp_path),
                    "templates_dir": str(ROOT / "templates"),
                    "public_url": "http://alerts.example.org",
                    "signing_key": "orgs-test-signing-key",
                },
                "sources": {"tenders": {"kind": "ckan", "base_url": source_url}},
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=clock) as agent:
            ids = _people(agent, clock)
            with serve(create_app(agent)) as url:
                yield Site(agent, url, clock, ids)


def _people(agent: Agent, clock: Clock) -> dict[str, int]:
    """An admin, an organisation ``ngo`` with an owner, an editor and a viewer, and a stranger."""
    with Session(agent.db, expire_on_commit=False) as session:
        users = {
            email: accounts.create_user(session, email, PASSWORD, now=clock(), admin=email == ADMIN)
            for email in (ADMIN, OWNER, EDITOR, VIEWER, STRANGER)
        }
        org = organisations.create_organisation(
            session, "Welfare NGO", "ngo", OWNER, actor=ADMIN, now=clock()
        )
        for email, role in ((EDITOR, Role.EDITOR), (VIEWER, Role.VIEWER)):
            organisations.add_member(session, org, users[email], role, actor=OWNER, now=clock())
        session.commit()
        return {"org": org.id or 0, **{email: user.id or 0 for email, user in users.items()}}


def rule_form(name: str = "Welfare calls", **extra: Any) -> dict[str, Any]:
    """A shared subscription's form: a rule, the team's list address, daily digests."""
    return {
        "name": name,
        "query": "רווחה",
        "kinds": ["call_for_bids"],
        "channels": ["email"],
        "email": TEAM_LIST,
        "language": "he",
        "cadence": "daily",
        **extra,
    }


def test_the_list_shows_each_users_organisations_with_their_role(site: Site) -> None:
    with site.client(EDITOR) as http:
        page = http.get("/orgs")
        assert page.status_code == 200
        assert "Welfare NGO" in page.text
        assert "Editor" in page.text
        assert 'action="/orgs"' not in page.text  # only admins create organisations
    with site.client(STRANGER) as http:
        assert "Welfare NGO" not in http.get("/orgs").text
    with site.client(ADMIN) as http:
        page = http.get("/orgs")
        assert "Welfare NGO" in page.text
        assert 'action="/orgs"' in page.text
    with site.client() as http:
        answer = http.get("/orgs")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=/orgs"


def test_an_admin_creates_an_organisation_with_its_first_owner(site: Site) -> None:
    with site.client(ADMIN) as http:
        form = {"name": "Arab Teachers", "slug": "arab-teachers", "owner": VIEWER}
        answer = post(http, "/orgs", form)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/orgs/arab-teachers"
        bad = post(http, "/orgs", {**form, "slug": "Arab Teachers!"})
        assert bad.status_code == 400
        assert 'id="org-slug" name="slug" value="Arab Teachers!"' in bad.text
        assert 'aria-invalid="true" aria-describedby="org-slug-error org-slug-hint"' in bad.text
        assert "lowercase English letters" in bad.text
        unknown = post(http, "/orgs", {**form, "slug": "other", "owner": "nobody@ngo.example"})
        assert unknown.status_code == 400
        assert "No login has this e-mail" in unknown.text
    with site.client(VIEWER) as http:
        assert "Owner" in http.get("/orgs/arab-teachers").text
        assert post(http, "/orgs", {**form, "slug": "mine"}).status_code == 403
    entry = site.log()[-1]
    assert (entry.action, entry.actor, entry.subject) == ("member_added", ADMIN, VIEWER)


def test_non_members_get_404_and_admins_see_every_organisation(site: Site) -> None:
    with site.client(STRANGER) as http:
        for path in ("/orgs/ngo", "/orgs/ngo/log", "/orgs/ngo/subscriptions/new", "/orgs/none"):
            assert http.get(path).status_code == 404, path
        assert (
            post(http, "/orgs/ngo/members", {"email": STRANGER, "role": "owner"}).status_code == 404
        )
    with site.client(ADMIN) as http:
        assert http.get("/orgs/ngo").status_code == 200


def test_an_editor_creates_edits_pauses_resumes_and_deletes_every_change_logged(
    site: Site,
) -> None:
    with site.client(EDITOR) as http:
        form = http.get("/orgs/ngo/subscriptions/new")
        assert form.status_code == 200
        assert 'name="email"' in form.text
        assert post(http, "/orgs/ngo/subscriptions/new", rule_form()).status_code == 303
        sub = site.shared("Welfare calls")
        assert (sub.organisation_id, sub.active, sub.awaiting_confirmation) == (
            site.ids["org"],
            True,
            None,
        )
        assert sub.addresses == {"email": TEAM_LIST}
        page = http.get("/orgs/ngo").text
        assert TEAM_LIST in page
        assert "Daily digest" in page
        assert "רווחה" in page
        site.clock.tick()
        base = f"/orgs/ngo/subscriptions/{sub.public_id}"
        edited = rule_form(query="רווחה OR נוער", amount_min="100000")
        assert post(http, base, edited).status_code == 303
        for action in ("pause", "resume", "delete"):
            site.clock.tick()
            assert post(http, f"{base}/{action}").status_code == 303
        log = http.get("/orgs/ngo/log").text
    entries = [e for e in site.log() if e.subscription_id == sub.id]
    assert [e.action for e in entries] == ["created", "edited", "paused", "resumed", "deleted"]
    assert {e.actor for e in entries} == {EDITOR}
    assert [e.at for e in entries] == [START + timedelta(minutes=n) for n in range(5)]
    assert organisations.changes(entries[1]) == {
        "query": ("רווחה", "רווחה OR נוער"),
        "amount_min": (None, 100000.0),
    }
    assert entries[-1].before is not None
    assert entries[-1].before["email"] == TEAM_LIST
    # Newest first; the edit says what changed from what to what.
    assert log.index("Deleted the subscription") < log.index("Created the subscription")
    assert re.search(r"Search words: <bdi>רווחה</bdi> → <bdi>רווחה OR נוער</bdi>", log)
    assert EDITOR in log
    assert "1 December 2026" in log


def test_an_edit_keeps_a_paused_subscription_paused(site: Site) -> None:
    with site.client(EDITOR) as http:
        post(http, "/orgs/ngo/subscriptions/new", rule_form())
        base = f"/orgs/ngo/subscriptions/{site.shared('Welfare calls').public_id}"
        post(http, f"{base}/pause")
        post(http, base, rule_form(name="Renamed"))
    renamed = site.shared("Renamed")
    assert not renamed.active
    with site.session() as session:
        assert subscriptions.by_name(session, "Welfare calls") is None


def test_a_viewer_sees_everything_and_may_change_nothing(site: Site) -> None:
    with site.client(EDITOR) as http:
        post(http, "/orgs/ngo/subscriptions/new", rule_form())
    sub = site.shared("Welfare calls")
    base = f"/orgs/ngo/subscriptions/{sub.public_id}"
    with site.client(VIEWER) as http:
        page = http.get("/orgs/ngo").text
        assert "Welfare calls" in page
        assert TEAM_LIST in page
        assert EDITOR in page
        assert base not in page
        assert "subscriptions/new" not in page
        assert "/members" not in page
        assert http.get(base).status_code == 403
        assert http.get("/orgs/ngo/subscriptions/new").status_code == 403
        for path in (base, f"{base}/pause", f"{base}/delete", "/orgs/ngo/subscriptions/new"):
            assert post(http, path, rule_form(name="Mine")).status_code == 403, path
        member = f"/orgs/ngo/members/{site.ids[EDITOR]}"
        assert post(http, f"{member}/role", {"role": "viewer"}).status_code == 403
        assert post(http, f"{member}/remove").status_code == 403
        assert (
            post(http, "/orgs/ngo/members", {"email": STRANGER, "role": "viewer"}).status_code
            == 403
        )
    assert site.shared("Welfare calls").active
    assert [e.action for e in site.log()][-1] == "created"


def test_the_owner_manages_members_but_never_removes_the_last_owner(site: Site) -> None:
    member = f"/orgs/ngo/members/{site.ids[VIEWER]}"
    owner = f"/orgs/ngo/members/{site.ids[OWNER]}"
    with site.client(OWNER) as http:
        assert (
            post(http, "/orgs/ngo/members", {"email": STRANGER, "role": "editor"}).status_code
            == 303
        )
        again = post(http, "/orgs/ngo/members", {"email": STRANGER, "role": "viewer"})
        assert again.status_code == 400
        assert "already a member" in again.text
        assert post(http, f"{member}/role", {"role": "editor"}).status_code == 303
        assert post(http, f"{member}/remove").status_code == 303
        for path, data in ((f"{owner}/remove", {}), (f"{owner}/role", {"role": "viewer"})):
            refused = post(http, path, data)
            assert refused.status_code == 409
            assert "at least one owner" in refused.text
        assert post(http, f"{member}/remove").status_code == 404  # no longer a member
        assert post(http, f"{owner}/role", {"role": "boss"}).status_code == 400
    with site.session() as session:
        roles = {u.email: r for u, r in organisations.members(session, site.ids["org"])}
    assert roles == {OWNER: Role.OWNER, EDITOR: Role.EDITOR, STRANGER: Role.EDITOR}
    changed = [(e.action, e.subject, e.actor) for e in site.log()][-3:]
    assert changed == [
        (AuditAction.MEMBER_ADDED, STRANGER, OWNER),
        (AuditAction.ROLE_CHANGED, VIEWER, OWNER),
        (AuditAction.MEMBER_REMOVED, VIEWER, OWNER),
    ]
    with site.client(EDITOR) as http:
        assert post(http, f"{member}/remove").status_code == 403


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(site: Site) -> None:
    with site.client(OWNER) as http:
        forged = http.post("/orgs/ngo/members", data={"email": STRANGER, "role": "owner"})
        assert forged.status_code == 403
        wrong = http.post("/orgs/ngo/subscriptions/new", data={**rule_form(), "csrf_token": "x"})
        assert wrong.status_code == 403
    with site.session() as session:
        found = session.exec(select(Membership).where(Membership.user_id == site.ids[STRANGER]))
        assert found.first() is None
        assert subscriptions.by_name(session, "Welfare calls") is None


def test_a_form_with_errors_says_which_fields_and_saves_nothing(site: Site) -> None:
    with site.client(EDITOR) as http:
        bad = post(http, "/orgs/ngo/subscriptions/new", rule_form(name="", email="not-an-address"))
        assert bad.status_code == 400
        assert "Give the subscription a name." in bad.text
        assert 'aria-describedby="sub-email-error sub-email-hint"' in bad.text
        none = post(http, "/orgs/ngo/subscriptions/new", rule_form(channels=[]))
        assert none.status_code == 400
        assert "Tick at least one channel." in none.text
        rule = post(http, "/orgs/ngo/subscriptions/new", rule_form(query='"unclosed'))
        assert rule.status_code == 400
        assert 'id="query-error"' in rule.text
        # A channel the configuration does not set up is not offered, nor taken.
        assert 'value="telegram"' not in http.get("/orgs/ngo/subscriptions/new").text
        forged = post(
            http,
            "/orgs/ngo/subscriptions/new",
            rule_form(channels=["telegram"], telegram_chat_id="1"),
        )
        assert forged.status_code == 400
    assert [e.action for e in site.log()][-1] == "member_added"


def test_a_taken_name_never_overwrites_another_subscription(site: Site) -> None:
    with site.session() as session:
        given = subscriptions.SubscriptionInput.model_validate(
            {"name": "Welfare calls", "query": "x"}
        )
        personal = subscriptions.save(session, given, now=START)
        session.commit()
    with site.client(EDITOR) as http:
        assert post(http, "/orgs/ngo/subscriptions/new", rule_form()).status_code == 303
        # Someone else's subscription is not this organisation's, whatever its id.
        assert http.get(f"/orgs/ngo/subscriptions/{personal.public_id}").status_code == 404
        assert post(http, f"/orgs/ngo/subscriptions/{personal.public_id}/delete").status_code == 404
    assert site.shared("Welfare calls").organisation_id is None
    assert site.shared("Welfare calls (2)").organisation_id == site.ids["org"]


def test_the_log_is_paginated_newest_first(site: Site) -> None:
    with site.client(EDITOR) as http:
        post(http, "/orgs/ngo/subscriptions/new", rule_form())
        base = f"/orgs/ngo/subscriptions/{site.shared('Welfare calls').public_id}"
        for number in range(20):
            site.clock.tick()
            post(http, f"{base}/{'pause' if number % 2 == 0 else 'resume'}")
        # 3 members added, 1 subscription created, 20 pauses and resumes: 24 entries.
        first = http.get("/orgs/ngo/log").text
        second = http.get("/orgs/ngo/log?page=2").text
        huge = http.get("/orgs/ngo/log?page=99999999999999999999")
    rows = [re.findall(r"<tr>\s*<td>.*?</tr>", page, re.S) for page in (first, second)]
    assert [len(found) for found in rows] == [20, 4]
    assert "Resumed the subscription" in rows[0][0]
    assert "Added a member" in rows[1][-1]
    assert OWNER in rows[1][-1]
    assert "Page 1 of 2" in first
    assert 'rel="next"' in first
    assert 'rel="prev"' in second
    assert huge.status_code == 200
    assert "Nothing has changed yet." in huge.text
