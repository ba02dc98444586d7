"""The HTTP server: feeds with ETags, one-click unsubscribe, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import httpx
import pytest
from sqlmodel import Session

from agent import subscriptions
from agent.config import build_config
from agent.models import Subscription
from agent.service import Agent
from agent.web import create_app
from tests.conftest import ROOT, serve
from tests.fakes import ckan

NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)


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
                    "database_url": f"sqlite:///{tmp_path / 'a.db'}",
                    "templates_dir": str(ROOT / "templates"),
                    "public_url": "https://alerts.example.org",
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
            app = create_app(
                agent.db,
                agent.renderer,
                agent.links,
                sources=agent.config.sources,
                clock=agent.clock,
            )
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


async def test_health_reports_sources_and_the_outbox(site: Site) -> None:
    async with httpx.AsyncClient() as http:
        health = (await http.get(f"{site.url}/health")).json()
    assert health["status"] == "ok"
    assert health["sources"][0]["name"] == "tenders"
    assert health["sources"][0]["last_item_count"] == 21
    assert health["outbox"]["sent"] >= 3
