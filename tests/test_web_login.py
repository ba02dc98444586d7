"""Logging in and out over HTTP: the right home, the same answer for every wrong guess, lockout.

``running`` (also used by ``test_web_admin``) serves the real app over a real
agent with a clock the test moves, and a CKAN fake whose requests are counted.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from agent import accounts
from agent.accounts import User
from agent.config import build_config
from agent.service import Agent
from agent.web import create_app
from agent.web.login import PER_ADDRESS, PER_CLIENT, local_path
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan
from tests.samples import Clock
from tests.service import Counted, Switch

START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ADMIN = "admin@ngo.example"
MEMBER = "member@ngo.example"
PASSWORD = "correct horse battery staple"


@dataclass
class Web:
    """The served app, its agent and clock, and the source it polls."""

    agent: Agent
    url: str
    clock: Clock
    #: What the CKAN fake publishes: set ``.app`` to change it.
    source: Switch
    #: Every request the CKAN fake received.
    requests: Counted

    def client(self) -> httpx.Client:
        """A browser-like client: it keeps the session cookie, follows no redirect."""
        return httpx.Client(base_url=self.url, timeout=30)

    def async_client(self) -> httpx.AsyncClient:
        """The same, for tests that also await the agent."""
        return httpx.AsyncClient(base_url=self.url, timeout=30)

    def session(self) -> Session:
        """A database session."""
        return Session(self.agent.db, expire_on_commit=False)


@contextlib.asynccontextmanager
async def running(tmp_path: Path, *, public_url: str = "http://127.0.0.1") -> AsyncIterator[Web]:
    """Serve the app over an agent with three CKAN sources (one disabled in config), two logins."""
    source = Switch(ckan.build_app())
    requests = Counted(source)
    clock = Clock(START)
    with serve(requests) as source_url:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(tmp_path),
                    "templates_dir": str(ROOT / "templates"),
                    "public_url": public_url,
                    "signing_key": "web-login-test-signing-key",
                },
                "sources": {
                    "tenders": {
                        "kind": "ckan",
                        "base_url": source_url,
                        "alert_on_first_poll": True,
                    },
                    "copy": {"kind": "ckan", "base_url": source_url},
                    "quiet": {"kind": "ckan", "base_url": source_url, "enabled": False},
                },
            },
            base_dir=tmp_path,
        )
        # No keep-alive: "poll now" polls in the server's event loop, the test in its own,
        # and a pooled connection belongs to the loop that opened it.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with (
            httpx.AsyncClient(limits=limits, timeout=30) as http,
            Agent.open(config, clock=clock, http=http) as agent,
        ):
            with Session(agent.db) as session:
                accounts.create_user(session, ADMIN, PASSWORD, now=START, admin=True)
                accounts.create_user(session, MEMBER, PASSWORD, now=START)
                session.commit()
            with serve(create_app(agent)) as url:
                yield Web(agent, url, clock, source, requests)


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    async with running(tmp_path) as served:
        yield served


def token_in(page: httpx.Response) -> str:
    """The CSRF token of the page's (first) form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def log_in(
    client: httpx.Client, email: str = ADMIN, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    """Open the login page, then post the form as a browser would."""
    token = token_in(client.get("/login?lang=en"))
    form = {"csrf_token": token, "email": email, "password": password, **extra}
    return client.post("/login", data=form)


def logged_in_user(client: httpx.Client) -> str | None:
    """Who the session says is logged in (by the page's log-out button)."""
    page = client.get("/login?lang=en")
    if page.status_code == 303:
        return page.headers["location"]
    return None


def test_an_admin_lands_on_the_console_and_a_member_on_their_organisations(web: Web) -> None:
    with web.client() as admin:
        answer = log_in(admin)
        assert (answer.status_code, answer.headers["location"]) == (303, "/admin")
        assert admin.get("/admin").status_code == 200
    with web.client() as member:
        answer = log_in(member, MEMBER)
        assert (answer.status_code, answer.headers["location"]) == (303, "/orgs")
    with web.session() as session:
        user = accounts.user_by_email(session, ADMIN)
        assert user is not None
        assert user.last_login_at == START


def test_a_wrong_password_and_an_unknown_address_get_the_same_answer(web: Web) -> None:
    answers = []
    for email, password in [(ADMIN, "not the password at all"), ("nobody@ngo.example", PASSWORD)]:
        with web.client() as client:
            answer = log_in(client, email, password)
            assert answer.status_code == 400
            assert "The e-mail address or the password is wrong." in answer.text
            assert 'aria-invalid="true"' in answer.text
            assert client.get("/admin").status_code == 303, "not logged in"
            # The page keeps what was typed, except the password.
            assert f'value="{email}"' in answer.text
            assert password not in answer.text
            answers.append(answer.text.replace(email, "EMAIL"))
    # Both pages differ by their CSRF tokens only.
    assert re.sub(r'value="[^"]{40,}"', "", answers[0]) == re.sub(
        r'value="[^"]{40,}"', "", answers[1]
    )


def test_an_empty_form_asks_for_both_fields(web: Web) -> None:
    with web.client() as client:
        answer = log_in(client, "", "")
        assert answer.status_code == 400
        assert "Enter your e-mail address and your password." in answer.text


@pytest.mark.parametrize(
    ("wanted", "goes_to"),
    [
        ("/admin/sources", "/admin/sources"),
        ("/orgs/some-ngo?tab=members", "/orgs/some-ngo?tab=members"),
        ("https://evil.example/", "/admin"),
        ("//evil.example/", "/admin"),
        ("/\\evil.example/", "/admin"),
        ("/\t/evil.example/", "/admin"),
        ("javascript:alert(1)", "/admin"),
        ("", "/admin"),
    ],
)
def test_after_login_only_a_page_of_this_site_is_followed(
    web: Web, wanted: str, goes_to: str
) -> None:
    with web.client() as client:
        answer = log_in(client, next=wanted)
        assert answer.headers["location"] == goes_to


def test_the_login_page_carries_next_only_when_it_is_local() -> None:
    assert local_path("/admin/deliveries?status=dead") == "/admin/deliveries?status=dead"
    assert local_path("//evil.example") == ""
    assert local_path("/\\evil.example") == ""
    assert local_path("/\n/evil.example") == ""


def test_a_protected_page_sends_an_anonymous_visitor_to_log_in_and_back(web: Web) -> None:
    with web.client() as client:
        answer = client.get("/admin/sources")
        assert (answer.status_code, answer.headers["location"]) == (
            303,
            "/login?next=/admin/sources",
        )
        page = client.get(answer.headers["location"])
        assert '<input type="hidden" name="next" value="/admin/sources">' in page.text
        back = client.post(
            "/login",
            data={
                "csrf_token": token_in(page),
                "email": ADMIN,
                "password": PASSWORD,
                "next": "/admin/sources",
            },
        )
        assert back.headers["location"] == "/admin/sources"
        assert client.get("/admin/sources").status_code == 200


def test_logging_in_starts_a_fresh_session_and_logging_out_ends_it(web: Web) -> None:
    with web.client() as client:
        before = token_in(client.get("/login"))
        cookie_before = client.cookies["sa_session"]
        log_in(client)
        assert client.cookies["sa_session"] != cookie_before
        # The token from before the login is worthless now (no session fixation).
        assert client.post("/logout", data={"csrf_token": before}).status_code == 403
        token = token_in(client.get("/admin"))
        answer = client.post("/logout", data={"csrf_token": token})
        assert (answer.status_code, answer.headers["location"]) == (303, "/login")
        page = client.get("/login?lang=en")
        assert '<p class="flash" role="status">You are logged out.</p>' in page.text
        assert client.get("/admin").status_code == 303


def test_a_logged_in_visitor_is_sent_on_from_the_login_page(web: Web) -> None:
    with web.client() as client:
        log_in(client)
        assert logged_in_user(client) == "/admin"


@pytest.mark.parametrize("path", ["/login", "/logout"])
def test_every_post_needs_the_csrf_token(web: Web, path: str) -> None:
    with web.client() as client:
        client.get("/login")
        answer = client.post(path, data={"email": ADMIN, "password": PASSWORD})
        assert answer.status_code == 403
        assert client.get("/admin").status_code == 303, "not logged in"


def test_too_many_failures_for_one_address_lock_it_for_a_while(web: Web) -> None:
    with web.client() as client:
        for _ in range(PER_ADDRESS):
            assert log_in(client, ADMIN, "wrong password, again").status_code == 400
        locked = log_in(client, ADMIN, PASSWORD)
        assert locked.status_code == 429
        assert "Too many failed attempts. Try again in 15 minutes." in locked.text
        assert int(locked.headers["retry-after"]) == 15 * 60
        # Another address from the same client is not locked by these.
        assert log_in(client, MEMBER, PASSWORD).status_code == 303
    web.clock.now += timedelta(minutes=10)
    with web.client() as client:
        assert "Try again in 5 minutes." in log_in(client, ADMIN, PASSWORD).text
    web.clock.now += timedelta(minutes=5)
    with web.client() as client:
        assert log_in(client, ADMIN, PASSWORD).status_code == 303


def test_too_many_failures_from_one_client_lock_it_for_every_address(web: Web) -> None:
    with web.client() as client:
        for number in range(PER_CLIENT):
            answer = log_in(client, f"guess{number}@ngo.example", "wrong password, again")
            assert answer.status_code == 400
        assert log_in(client, MEMBER, PASSWORD).status_code == 429


@pytest.mark.parametrize("language", ["he", "ar", "en"])
def test_the_lockout_says_how_long_in_every_language(web: Web, language: str) -> None:
    with web.client() as client:
        client.get(f"/login?lang={language}")
        for _ in range(PER_ADDRESS):
            log_in(client, ADMIN, "wrong password, again")
        web.clock.now += timedelta(minutes=14, seconds=30)
        page = client.get(f"/login?lang={language}")
        answer = client.post(
            "/login", data={"csrf_token": token_in(page), "email": ADMIN, "password": PASSWORD}
        )
        assert answer.status_code == 429
        expected = {"he": "בעוד דקה.", "ar": "بعد دقيقة.", "en": "Try again in a minute."}
        assert expected[language] in answer.text


def _cookie(answer: httpx.Response) -> dict[str, Any]:
    header = answer.headers["set-cookie"].lower()
    return {part.strip().split("=")[0]: part for part in header.split(";")}


def test_the_session_cookie_is_httponly_samesite_lax_and_not_secure_over_http(web: Web) -> None:
    with web.client() as client:
        attributes = _cookie(client.get("/login"))
        assert "httponly" in attributes
        assert attributes["samesite"].strip() == "samesite=lax"
        assert "secure" not in attributes


async def test_the_session_cookie_is_secure_when_the_site_is_https(tmp_path: Path) -> None:
    async with (
        running(tmp_path, public_url="https://alerts.example.org") as served,
        served.async_client() as client,
    ):
        attributes = _cookie(await client.get("/login"))
    assert {"httponly", "secure", "samesite"} <= set(attributes)


def test_a_users_password_is_stored_hashed(web: Web) -> None:
    with web.session() as session:
        user = session.get(User, 1)
        assert user is not None
        assert PASSWORD not in user.password_hash
        assert user.password_hash.startswith("$argon2id$")
