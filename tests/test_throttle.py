"""Rate limits in the database: the core, then two web processes sharing one database.

"Two processes" are two agents, each with its own ``create_app``, over one
database: nothing else is shared between them, as between processes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agent import db, throttle
from agent.scheduler import purge_job
from agent.service import Agent
from agent.throttle import Attempt, Limit, Scope
from agent.web import create_app
from agent.web.login import PER_ADDRESS
from agent.web.signup import PER_CLIENT, RESEND_AFTER
from tests import databases
from tests.test_web_api_site import PASSWORD, ApiSite, api_site, csrf_in, serve_here

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
IP = "203.0.113.7"
FEED = {"rule": {"query": "שירותי"}, "channels": ["rss"]}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    found = db.connect(databases.url(tmp_path))
    db.init(found)
    yield found
    found.dispose()


def test_a_limit_counts_attempts_within_its_window_and_says_how_long_to_wait(
    engine: Engine,
) -> None:
    limit = Limit(3, timedelta(minutes=15))
    with Session(engine) as session:
        for minute in range(3):
            throttle.hit(session, Scope.LOGIN_CLIENT, IP, T0 + timedelta(minutes=minute))
        session.commit()
        later = T0 + timedelta(minutes=5)
        assert throttle.count(session, Scope.LOGIN_CLIENT, IP, T0 - timedelta(hours=1)) == 3
        assert not throttle.allowed(session, limit, Scope.LOGIN_CLIENT, IP, later)
        # Free again once the oldest of the three leaves the window.
        wait = throttle.retry_after(session, limit, Scope.LOGIN_CLIENT, IP, later)
        assert wait == timedelta(minutes=10)
        assert throttle.allowed(session, limit, Scope.LOGIN_CLIENT, IP, later + wait)
        # Other keys, and the same key in another scope, are counted apart.
        assert throttle.allowed(session, limit, Scope.LOGIN_CLIENT, "198.51.100.1", later)
        assert throttle.allowed(session, limit, Scope.SUBSCRIBE_CLIENT, IP, later)


def test_a_claim_counts_only_while_under_the_limit(engine: Engine) -> None:
    limit = Limit(2, timedelta(hours=1))
    with Session(engine) as session:
        claims = [throttle.claim(session, limit, Scope.SUBSCRIBE_CLIENT, IP, T0) for _ in "abc"]
        assert [claim is not None for claim in claims] == [True, True, False]
        # A refused claim leaves no row behind: refusals do not lengthen the wait.
        assert throttle.count(session, Scope.SUBSCRIBE_CLIENT, IP, T0 - timedelta(hours=1)) == 2


def test_keys_are_stored_hashed_and_old_rows_pruned(engine: Engine) -> None:
    with Session(engine) as session:
        throttle.hit(session, Scope.LOGIN_ADDRESS, "dana@ngo.example", T0)
        throttle.hit(session, Scope.LOGIN_ADDRESS, "dana@ngo.example", T0 + timedelta(days=2))
        session.commit()
        rows = session.exec(select(Attempt)).all()
        assert all("dana" not in row.digest and len(row.digest) == 64 for row in rows)
        assert throttle.prune(session, T0 + timedelta(days=1)) == 1
        assert throttle.forget(session, Scope.LOGIN_ADDRESS, "dana@ngo.example") == 1
        session.commit()
        assert session.exec(select(Attempt)).all() == []


@dataclass
class Pair:
    """Two web processes over one database: ``urls[0]`` and ``urls[1]``."""

    site: ApiSite
    urls: tuple[str, str]

    def client(self, number: int) -> httpx.AsyncClient:
        """A browser-like client of process ``number``."""
        return httpx.AsyncClient(base_url=self.urls[number], timeout=30)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    async with (
        api_site(tmp_path, poll=False) as site,
        Agent.open(site.agent.config, clock=site.clock) as second,
        serve_here(create_app(second)) as url,
    ):
        yield Pair(site, (site.url, url))


async def test_the_api_limits_sign_ups_per_client_across_processes(pair: Pair) -> None:
    async with pair.client(0) as one, pair.client(1) as two:
        for number in range(PER_CLIENT.count):
            made = await (one, two)[number % 2].post("/api/v1/subscriptions", json=FEED)
            assert made.status_code == 202, made.text
        for client in (one, two):
            refused = await client.post("/api/v1/subscriptions", json=FEED)
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) == PER_CLIENT.window.total_seconds()
            assert refused.json() == {"error": refused.json()["error"], "errors": []}
        pair.site.clock.now += PER_CLIENT.window
        assert (await two.post("/api/v1/subscriptions", json=FEED)).status_code == 202


async def test_one_confirmation_per_address_across_processes(pair: Pair) -> None:
    body = {**FEED, "channels": ["email"], "addresses": {"email": "dana@ngo.example"}}
    async with pair.client(0) as one, pair.client(1) as two:
        for client in (one, two, one):
            assert (await client.post("/api/v1/subscriptions", json=body)).status_code == 202
        assert len(_mail_to(pair, "dana@ngo.example")) == 1
        pair.site.clock.now += RESEND_AFTER
        assert (await two.post("/api/v1/subscriptions", json=body)).status_code == 202
    assert len(_mail_to(pair, "dana@ngo.example")) == 2


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("he", "נעשו יותר מדי הרשמות מהרשת שלך"),
        ("ar", "أُجريت اشتراكات كثيرة جدًا من شبكتك"),
        ("en", "Too many subscriptions were made from your network"),
    ],
)
async def test_the_subscribe_page_says_when_a_client_has_had_its_share(
    pair: Pair, language: str, said: str
) -> None:
    # The test's client has had its share already (counted as any process would).
    with Session(pair.site.agent.db) as session:
        for _ in range(PER_CLIENT.count):
            throttle.hit(session, Scope.SUBSCRIBE_CLIENT, "127.0.0.1", pair.site.clock())
        session.commit()
    async with pair.client(1) as client:
        form = await client.get(f"/subscribe?lang={language}")
        data = {"query": "שירותי", "channel": "rss", "language": language}
        data |= {"cadence": "daily", "name": "", "action": "subscribe"}
        answer = await client.post("/subscribe", data={**data, "csrf_token": csrf_in(form.text)})
    assert answer.status_code == 429
    assert said in answer.text
    assert answer.headers["retry-after"] == str(int(PER_CLIENT.window.total_seconds()))


async def test_the_login_lockout_holds_across_processes(pair: Pair) -> None:
    pair.site.user("admin@ngo.example", admin=True)
    for number in range(PER_ADDRESS):
        answer = await _log_in(pair, number % 2, "wrong password, again")
        assert answer.status_code == 400
    for number in (0, 1):
        locked = await _log_in(pair, number, PASSWORD)
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) == 15 * 60


async def _log_in(pair: Pair, number: int, password: str) -> httpx.Response:
    async with pair.client(number) as client:
        form = await client.get("/login?lang=en")
        data = {"email": "admin@ngo.example", "password": password}
        return await client.post("/login", data={**data, "csrf_token": csrf_in(form.text)})


def _mail_to(pair: Pair, address: str) -> list[str]:
    messages = pair.site.mail.messages
    return [str(m["Subject"]) for m in messages if address in str(m["To"])]


async def test_the_purge_job_prunes_attempts_older_than_a_day(pair: Pair) -> None:
    agent, now = pair.site.agent, pair.site.clock()
    with Session(agent.db) as session:
        throttle.hit(session, Scope.LOGIN_CLIENT, IP, now - throttle.KEEP - timedelta(minutes=1))
        throttle.hit(session, Scope.LOGIN_CLIENT, IP, now - timedelta(hours=1))
        session.commit()
    await purge_job(agent)
    with Session(agent.db) as session:
        assert throttle.count(session, Scope.LOGIN_CLIENT, IP, now - timedelta(days=7)) == 1
