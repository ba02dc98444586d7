"""The HTTP server: feeds with ETags, one-click unsubscribe, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import httpx
import pytest
from sqlmodel import Session

from agent import subscriptions
from agent.config import build_config
from agent.links import Links
from agent.models import Subscription
from agent.service import Agent
from agent.web import create_app
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan

NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)
KEY = "web-test-signing-key"


@dataclass
class Site:
    agent: Agent
    url: str
    subs: dict[str, Subscription]


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    with serve(ckan.build_app()) as source_url:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(tmp_path),
                    "templates_dir": str(ROOT / "templates"),
                    "public_url": "https://alerts.example.org",
                    "signing_key": KEY,
                },
                "sources": {
                    "tenders": {"kind": "ckan", "base_url": source_url, "alert_on_first_poll": True}
                },
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=lambda: NOW) as agent:
            subs = {}
            with Session(agent.db, expire_on_commit=False) as session:
                for language in ("he", "ar", "en"):
                    entry = subscriptions.SubscriptionInput.model_validate(
                        {"name": f"services-{language}", "query": "שירותי", "language": language}
                    )
                    subs[language] = subscriptions.save(session, entry, now=NOW)
                session.commit()
            await agent.poll_all()
            await agent.dispatch()
            app = create_app(agent)
            with serve(app) as url:
                yield Site(agent, url, subs)


@pytest.mark.parametrize(("language", "direction"), [("he", "rtl"), ("ar", "rtl"), ("en", "ltr")])
async def test_feed_lists_matches_and_answers_304_to_its_etag(
    site: Site, language: str, direction: str
) -> None:
    sub = site.subs[language]
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{site.url}/feeds/{sub.feed_token}.xml")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/atom+xml")
        feed = feedparser.parse(response.content)
        assert not feed.bozo
        assert feed.entries
        assert all("שירותי" in e.title or "שירותי" in e.summary for e in feed.entries)
        again = await http.get(
            f"{site.url}/feeds/{sub.feed_token}.xml",
            headers={"If-None-Match": response.headers["etag"]},
        )
        assert again.status_code == 304
    assert feed.feed.language == language
    assert f'dir="{direction}"' in feed.entries[0].content[0].value


async def test_unknown_feed_token_is_404(site: Site) -> None:
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{site.url}/feeds/guess.xml")).status_code == 404


@pytest.mark.parametrize(("language", "direction"), [("he", "rtl"), ("ar", "rtl"), ("en", "ltr")])
async def test_unsubscribe_page_then_one_click_post(
    site: Site, language: str, direction: str
) -> None:
    sub = site.subs[language]
    link = site.agent.links.unsubscribe_url(sub).replace("https://alerts.example.org", site.url)
    async with httpx.AsyncClient() as http:
        page = await http.get(link)
        assert page.status_code == 200
        assert f'lang="{language}" dir="{direction}"' in page.text
        assert '<form method="post"' in page.text
        # RFC 8058: a POST with this body, no cookies, no redirect.
        done = await http.post(link, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
    with Session(site.agent.db) as session:
        stored = session.get(Subscription, sub.id)
        assert stored is not None
        assert not stored.active


async def test_a_forged_unsubscribe_link_changes_nothing(site: Site) -> None:
    sub = site.subs["he"]
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{site.url}/unsubscribe/{sub.id}.0000000000")
    assert response.status_code == 404
    with Session(site.agent.db) as session:
        stored = session.get(Subscription, sub.id)
        assert stored is not None
        assert stored.active


def on_site(site: Site, link: str) -> str:
    """A link the agent made, pointed at the test server."""
    return link.replace("https://alerts.example.org", site.url)


def still_active(site: Site, sub: Subscription) -> bool:
    """Whether the stored subscription is still active."""
    with Session(site.agent.db) as session:
        stored = session.get(Subscription, sub.id)
        assert stored is not None
        return stored.active


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("%C2%B2", id="superscript two"),
        pytest.param("1.%C2%B2", id="superscript signature"),
        pytest.param("%D9%A1.0000", id="arabic-indic digit"),
        pytest.param("9" * 5000 + ".0000", id="5000-digit id"),
        pytest.param("1.%E2%80%AE0000", id="bidi control"),
        pytest.param("%00", id="nul"),
        pytest.param("a..b", id="empty middle part"),
    ],
)
async def test_odd_tokens_are_not_found_not_a_crash(site: Site, path: str) -> None:
    async with httpx.AsyncClient() as http:
        shown = await http.get(f"{site.url}/unsubscribe/{path}")
        posted = await http.post(f"{site.url}/unsubscribe/{path}")
    assert (shown.status_code, posted.status_code) == (404, 404)
    assert "הקישור אינו תקף" in posted.text  # "This link is not valid", in the default Hebrew


async def test_another_spelling_of_a_valid_token_is_not_found(site: Site) -> None:
    sub = site.subs["he"]
    link = on_site(site, site.agent.links.unsubscribe_url(sub))
    base, token = link.rsplit("/", 1)
    public_id, expires, signature = token.split(".")
    async with httpx.AsyncClient() as http:
        for spelling in (f"{public_id}.000{expires}.{signature}", token.upper(), token + "0"):
            answer = await http.post(f"{base}/{spelling}")
            assert answer.status_code == 404, spelling
    assert still_active(site, sub)


async def test_a_manage_link_does_not_unsubscribe(site: Site) -> None:
    sub = site.subs["en"]
    manage = site.agent.links.manage_url(sub).rsplit("/", 1)[1]
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{site.url}/unsubscribe/{manage}")
    assert answer.status_code == 404
    assert still_active(site, sub)


@pytest.mark.parametrize(
    ("language", "message"),
    [("he", "תוקף הקישור פג"), ("ar", "انتهت صلاحية هذا الرابط"), ("en", "This link has expired")],
)
async def test_an_expired_link_says_so_and_changes_nothing(
    site: Site, language: str, message: str
) -> None:
    sub = site.subs[language]
    long_ago = Links(site.url, KEY, clock=lambda: NOW - timedelta(days=400))
    link = long_ago.unsubscribe_url(sub)
    async with httpx.AsyncClient() as http:
        shown = await http.get(link)
        posted = await http.post(link, data={"List-Unsubscribe": "One-Click"})
    assert (shown.status_code, posted.status_code) == (410, 410)
    assert message in posted.text
    assert f'lang="{language}"' in posted.text
    assert still_active(site, sub)


async def test_health_reports_sources_and_the_outbox(site: Site) -> None:
    async with httpx.AsyncClient() as http:
        health = (await http.get(f"{site.url}/health")).json()
    assert health["status"] == "ok"
    assert health["sources"][0]["name"] == "tenders"
    assert health["sources"][0]["last_item_count"] == 21
    assert health["outbox"]["sent"] >= 3
