"""The admin console over HTTP: who may see it, the dashboard's figures, the sources' actions."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from agent import subscriptions
from agent.models import Delivery, SourceState, StoredItem
from tests.fakes import ckan
from tests.test_web_login import ADMIN, MEMBER, PASSWORD, START, Web, log_in, token_in, web

__all__ = ["web"]

SOURCES = "/admin/sources"


@pytest.fixture
async def admin(web: Web) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in as the admin, through the login form."""
    async with web.async_client() as client:
        form = {"csrf_token": token_in(await client.get("/login")), "email": ADMIN}
        answer = await client.post("/login", data={**form, "password": PASSWORD})
        assert answer.status_code == 303
        yield client


async def post(client: httpx.AsyncClient, path: str, page: str = SOURCES) -> httpx.Response:
    """Post a console form with the token of ``page``, as the browser would."""
    return await client.post(path, data={"csrf_token": token_in(await client.get(page))})


async def text(client: httpx.AsyncClient, path: str) -> str:
    """The page at ``path``, in English."""
    return (await client.get(f"{path}?lang=en")).text


def state(web: Web, name: str) -> SourceState | None:
    with web.session() as session:
        return session.get(SourceState, name)


def renamed(records: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Copies of the recorded rows under new publication numbers: new items, same shape."""
    return [{**row, "מספר פרסום": prefix + row["מספר פרסום"]} for row in records]


def figure(page: str, label: str) -> str:
    """The number shown on the dashboard's card labelled ``label``."""
    found = re.search(rf'<p class="figure">([^<]+)</p>\s*<p>(?:<a [^>]+>)?{re.escape(label)}', page)
    assert found, label
    return found.group(1)


# -- who may see it -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin", SOURCES])
def test_an_anonymous_visitor_is_sent_to_log_in(web: Web, path: str) -> None:
    with web.client() as client:
        answer = client.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, f"/login?next={path}")


@pytest.mark.parametrize("path", ["/admin", SOURCES])
def test_a_member_who_is_not_an_admin_is_refused(web: Web, path: str) -> None:
    with web.client() as client:
        log_in(client, MEMBER)
        assert client.get(path).status_code == 403


def test_a_member_cannot_disable_a_source(web: Web) -> None:
    with web.client() as client:
        log_in(client, MEMBER)
        # Any page of the site carries the session's token (the log-out form).
        token = token_in(client.get("/no-such-page"))
        answer = client.post(f"{SOURCES}/tenders/disable", data={"csrf_token": token})
        assert answer.status_code == 403
    assert state(web, "tenders") is None


@pytest.mark.parametrize("action", ["disable", "enable", "poll"])
async def test_every_action_needs_the_csrf_token(
    web: Web, admin: httpx.AsyncClient, action: str
) -> None:
    answer = await admin.post(f"{SOURCES}/tenders/{action}", data={})
    assert answer.status_code == 403
    wrong = await admin.post(f"{SOURCES}/tenders/{action}", data={"csrf_token": "guessed"})
    assert wrong.status_code == 403
    assert state(web, "tenders") is None
    assert web.requests.total == 0


async def test_an_unknown_source_is_not_found(admin: httpx.AsyncClient) -> None:
    assert (await post(admin, f"{SOURCES}/no-such-source/disable")).status_code == 404


# -- the dashboard ----------------------------------------------------------------


async def test_the_dashboard_counts_subscriptions_and_draws_the_last_30_days(
    web: Web, admin: httpx.AsyncClient
) -> None:
    with web.session() as session:
        for name, query in [
            ("everything", "publisher:משרד"),
            ("paused", "ניקיון"),
            ("waiting", "מחשוב"),
        ]:
            entry = subscriptions.SubscriptionInput.model_validate({"name": name, "query": query})
            sub = subscriptions.save(session, entry, now=START, confirmed=name != "waiting")
            if name == "paused":
                subscriptions.set_active(session, sub, False, now=START)
        session.commit()
    await web.agent.poll("tenders")  # alerts on its first poll (alert_on_first_poll)
    await web.agent.dispatch()
    web.clock.now = START + timedelta(days=2)
    web.source.app = ckan.build_app([*ckan.real_records(), *renamed(ckan.real_records()[:2], "9")])
    await web.agent.poll("tenders")
    await web.agent.dispatch()
    with web.session() as session:
        assert len(session.exec(select(StoredItem)).all()) == 23

    page = await text(admin, "/admin")
    assert (figure(page, "Active"), figure(page, "Paused or unsubscribed")) == ("1", "1")
    assert figure(page, "Awaiting confirmation of their address") == "1"
    assert figure(page, "Alerts that could not be delivered") == "0"
    assert '<a href="/admin/deliveries?status=dead">' in page
    # Each chart has its figures in a table: a row per day, oldest first, 30 of them.
    items = page.split('id="items-0-caption"')[1].split("</figure>")[0]
    assert "New publications per day from \u2068tenders\u2069 (30 days: 23)" in items
    assert '<tr><th scope="row">20 Nov</th><td>21</td></tr>' in items
    assert '<tr><th scope="row">22 Nov</th><td>2</td></tr>' in items
    assert items.count('<th scope="row">') == 30
    assert items.index("20 Nov") < items.index("22 Nov")
    assert "Nothing new in the last 30 days from: \u2068copy\u2069, \u2068quiet\u2069" in page
    sent = page.split('id="sent-0-caption"')[1].split("</figure>")[0]
    with web.session() as session:
        alerts = Counter(d.sent_at for d in session.exec(select(Delivery)).all())
    first, later = alerts[START], alerts[web.clock.now]
    assert first > later > 0
    assert f"Alerts sent per day by \u2068RSS feeds\u2069 (30 days: {first + later})" in sent
    assert f'<tr><th scope="row">20 Nov</th><td>{first}</td></tr>' in sent
    assert f'<tr><th scope="row">22 Nov</th><td>{later}</td></tr>' in sent
    assert "sent-1-caption" not in page, "no chart for a channel that sent nothing"
    for path in ["/admin/sources", "/admin/subscriptions", "/admin/deliveries", "/admin/templates"]:
        assert f'<a href="{path}"' in page


async def test_the_dashboard_lists_the_sources_that_need_attention(
    web: Web, admin: httpx.AsyncClient
) -> None:
    await web.agent.poll("copy")
    assert "Some sources have not been polled yet." in await text(admin, "/admin")
    await web.agent.poll("tenders")
    assert "Every source is working." in await text(admin, "/admin")
    web.source.app = ckan.build_app(fail="500")
    await web.agent.poll("copy")
    await post(admin, f"{SOURCES}/tenders/disable")
    page = await text(admin, "/admin")
    attention = page.split('id="attention-heading"')[1].split("</ul>")[0]
    assert 'href="/admin/sources#source-copy"' in attention
    assert "Failing" in attention
    assert 'href="/admin/sources#source-tenders"' in attention
    assert "Disabled" in attention
    assert "quiet" not in attention, "disabled in the configuration: the operator's choice"


# -- the sources page -------------------------------------------------------------


async def test_the_sources_page_shows_each_sources_health(
    web: Web, admin: httpx.AsyncClient
) -> None:
    await web.agent.poll("tenders")
    web.clock.now = START + timedelta(hours=3)
    web.source.app = ckan.build_app(fail="500")
    await web.agent.poll("copy")
    await web.agent.poll("copy")
    page = await text(admin, SOURCES)
    tenders = _row(page, "tenders")
    assert "<code>ckan</code>" in tenders
    assert "Working" in tenders
    assert "3 hours ago" in tenders
    # 21 new items in the last 7 days: 3 a day.
    assert "<td>3</td>" in tenders
    assert "Disable" in tenders
    assert "Poll now" in tenders
    copy = _row(page, "copy")
    assert "Failing" in copy
    assert "<td>2</td>" in copy, "two failed polls in a row"
    assert "HTTP 500" in copy, "the last error"
    assert "Never" in copy
    quiet = _row(page, "quiet")
    assert "Disabled in config.toml" in quiet
    assert "<button" not in quiet, "neither enabled nor polled from here"


def _row(page: str, name: str) -> str:
    return page.split(f'<tr id="source-{name}">')[1].split("</tr>")[0]


async def test_a_disabled_source_is_not_polled_and_health_says_disabled(
    web: Web, admin: httpx.AsyncClient
) -> None:
    await web.agent.poll("copy")
    answer = await post(admin, f"{SOURCES}/tenders/disable")
    assert (answer.status_code, answer.headers["location"]) == (303, SOURCES)
    page = await text(admin, SOURCES)
    assert "tenders\u2069 is disabled: it will not be polled until it is enabled again." in page
    assert f"Disabled by \u2068{ADMIN}\u2069" in _row(page, "tenders")
    stored = state(web, "tenders")
    assert stored is not None
    assert (stored.disabled_at, stored.disabled_by) == (START, ADMIN)

    before = web.requests.total
    result = await web.agent.poll("tenders")
    assert result.disabled
    assert web.requests.total == before, "a disabled source is not fetched"
    assert [r.source for r in await web.agent.poll_all() if not r.disabled] == ["copy"]

    health = (await admin.get("/health")).json()
    statuses = {s["name"]: s["status"] for s in health["sources"]}
    assert statuses == {"tenders": "disabled", "copy": "ok", "quiet": "disabled"}
    assert health["status"] == "ok", "a disabled source does not count against the service"

    before = web.requests.total
    refused = await post(admin, f"{SOURCES}/tenders/poll")
    assert refused.status_code == 303
    page = await text(admin, SOURCES)
    assert "is disabled, so it was not polled. Enable it first." in page
    assert 'role="alert"' in page
    assert web.requests.total == before


async def test_an_enabled_source_is_polled_again(web: Web, admin: httpx.AsyncClient) -> None:
    await post(admin, f"{SOURCES}/tenders/disable")
    assert (await web.agent.poll("tenders")).disabled
    await post(admin, f"{SOURCES}/tenders/enable")
    assert "is enabled: it is polled on its schedule again." in await text(admin, SOURCES)
    stored = state(web, "tenders")
    assert stored is not None
    assert (stored.disabled_at, stored.disabled_by) == (None, None)
    result = await web.agent.poll("tenders")
    assert (result.ok, result.disabled, result.items) == (True, False, 21)
    assert web.requests.total > 0


async def test_a_source_disabled_in_the_config_stays_disabled(
    web: Web, admin: httpx.AsyncClient
) -> None:
    await post(admin, f"{SOURCES}/quiet/enable")
    page = await text(admin, SOURCES)
    assert "is disabled in config.toml: only the configuration can enable it." in page
    await post(admin, f"{SOURCES}/quiet/poll")
    assert "is disabled, so it was not polled." in await text(admin, SOURCES)
    assert web.requests.total == 0
    health = (await admin.get("/health")).json()
    assert {s["name"]: s["status"] for s in health["sources"]}["quiet"] == "disabled"


async def test_poll_now_polls_in_the_background(web: Web, admin: httpx.AsyncClient) -> None:
    answer = await post(admin, f"{SOURCES}/tenders/poll")
    assert (answer.status_code, answer.headers["location"]) == (303, SOURCES)
    for _ in range(300):  # the poll runs in the server's event loop, in the background
        found = state(web, "tenders")
        if found is not None and found.last_success_at is not None:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the source was not polled")
    assert web.requests.total > 0
    with web.session() as session:
        assert len(session.exec(select(StoredItem)).all()) == 21
    page = await text(admin, SOURCES)
    assert "Polling \u2068tenders\u2069 now." in page
