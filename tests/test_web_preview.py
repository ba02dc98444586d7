"""The live preview of a rule: counts against the recorded tenders, errors at their position."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from agent.backtest import backtest
from agent.config import build_config
from agent.models import StoredItem, Subscription
from agent.rules import RuleSpec
from agent.service import Agent
from agent.web import create_app
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan

#: Ten days after most recorded tenders were published; the exemptions are first seen now.
NOW = datetime(2017, 6, 10, 9, 0, tzinfo=UTC)
SITE = "https://alerts.example.org"
HTMX = {"HX-Request": "true"}


@dataclass
class World:
    agent: Agent
    web: httpx.AsyncClient


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    with serve(ckan.build_app()) as source_url:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(tmp_path),
                    "templates_dir": str(ROOT / "templates"),
                    "public_url": SITE,
                    "signing_key": "web-preview-key",
                },
                "notifiers": {"email": {"drop_dir": str(tmp_path / "mail")}},
                "sources": {"tenders": {"kind": "ckan", "base_url": source_url}},
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=lambda: NOW) as agent:
            await agent.poll_all()
            transport = httpx.ASGITransport(app=create_app(agent))
            async with httpx.AsyncClient(transport=transport, base_url=SITE) as web:
                yield World(agent, web)


def recorded_tenders_published_in_the_last_90_days() -> list[dict[str, str]]:
    """The recorded tenders (not exemptions) whose publication date is in the window."""
    since = (NOW - timedelta(days=90)).date()
    found = []
    for row in ckan.real_records():
        published = row.get("תאריך פרסום") or ""
        if "מכרז" in row["סוג הליך"] and published:
            day = datetime.strptime(published, "%d.%m.%Y").date()
            if since <= day <= NOW.date():
                found.append(row)
    return found


async def test_the_preview_counts_what_the_rule_matched_in_the_last_90_days(world: World) -> None:
    expected = recorded_tenders_published_in_the_last_90_days()
    assert 0 < len(expected) < 11  # some recorded tenders are newer than the window's end
    answer = await world.web.get("/preview?kinds=tender&lang=en", headers=HTMX)
    assert answer.status_code == 200
    assert "<html" not in answer.text  # a fragment for htmx
    status = re.search(
        r'<p id="preview-status"[^>]*hx-swap-oob="innerHTML">([^<]*)</p>', answer.text
    )
    assert status is not None
    assert status[1] == f"{len(expected)} matching publications in the last 90 days."
    # Per week (weeks start on Sunday), in the chart's table: 4–8 June holds four.
    rows = re.findall(r'<th scope="row">([^<]+)</th><td>(\d+)</td>', answer.text)
    assert sum(int(n) for _, n in rows) == len(expected)
    in_june = [r for r in expected if date(2017, 6, 4) <= _day(r) <= date(2017, 6, 10)]
    assert ("4 Jun", str(len(in_june))) in rows
    # The five newest, newest first, each linked to its item's page.
    links = re.findall(r'<a href="/items/(\d+)" dir="auto">([^<]+)</a>', answer.text)
    assert len(links) == 5
    with Session(world.agent.db) as session:
        for item_id, title in links:
            stored = session.get(StoredItem, int(item_id))
            assert stored is not None
            assert stored.data["title"] == html.unescape(title)
    newest = sorted(expected, key=_day, reverse=True)
    assert _day(newest[4]) > _day(newest[5])  # no tie at the cut: the five are known
    # (Titles are stored with their white space collapsed.)
    assert {html.unescape(t) for _, t in links} == {
        " ".join(r["שם הליך"].split()) for r in newest[:5]
    }


def _day(row: dict[str, str]) -> date:
    return datetime.strptime(row["תאריך פרסום"], "%d.%m.%Y").date()


@pytest.mark.parametrize(("language", "error"), [("he", "שגיאה בכלל"), ("en", "Error in the rule")])
async def test_a_broken_query_shows_its_error_at_its_position(
    world: World, language: str, error: str
) -> None:
    answer = await world.web.get(f'/preview?query=ענן "unclosed&lang={language}', headers=HTMX)
    assert answer.status_code == 200
    assert f"{error}: the quote is never closed" in answer.text
    assert '<code dir="auto">ענן <mark>&#34;</mark>unclosed</code>' in answer.text
    assert "<figure" not in answer.text


async def test_an_empty_rule_invites_to_write_one(world: World) -> None:
    # The form always sends the direction select: its default is no filter.
    answer = await world.web.get("/preview?query=&change_direction=either&lang=en", headers=HTMX)
    assert "Type search words or choose filters" in answer.text
    assert "Error" not in answer.text


async def test_without_javascript_the_preview_comes_in_the_whole_page(world: World) -> None:
    page = await world.web.get("/preview?kinds=tender&lang=en")
    assert page.status_code == 200
    assert page.text.count("<h1>") == 1
    assert "matching publications in the last 90 days" in page.text
    form = await world.web.get("/subscribe")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    data = {"csrf_token": token[1], "query": "שירותי", "channel": "email", "email": ""}
    shown = await world.web.post("/subscribe", data={**data, "action": "preview"})
    assert shown.status_code == 200
    assert "matching publication" in shown.text  # the page stays in the language chosen
    assert 'value="שירותי"' in shown.text
    assert "aria-invalid" not in shown.text  # the address is asked for only on subscribing
    with Session(world.agent.db) as session:
        assert session.exec(select(Subscription)).first() is None


async def test_the_form_updates_the_preview_as_one_types_and_offers_configured_channels(
    world: World,
) -> None:
    page = await world.web.get("/subscribe")
    form = re.search(r"<form method=\"post\" action=\"/subscribe\"[^>]*>", page.text)
    assert form is not None
    assert 'hx-get="/preview"' in form[0]
    assert 'hx-trigger="input changed delay:500ms, change"' in form[0]
    assert 'hx-target="#preview"' in form[0]
    assert "csrf_token" not in form[0]
    assert "query,kinds," in form[0]
    assert re.search(r'<p id="preview-status"[^>]*role="status"', page.text)
    assert re.findall(r'name="channel" id="channel-(\w+)"', page.text) == ["email", "rss"]


async def test_a_bounded_backtest_says_it_left_older_history_out(world: World) -> None:
    node = RuleSpec(kinds=["tender", "exemption"]).compile()
    since = NOW - timedelta(days=90)
    with Session(world.agent.db) as session:
        whole = backtest(session, node, since=since, until=NOW)
        bounded = backtest(session, node, since=since, until=NOW, limit=3)
        enough = backtest(session, node, since=since, until=NOW, limit=1000)
    assert not whole.truncated
    assert not enough.truncated
    assert bounded.truncated
    assert len(bounded.hits) <= 3 < len(whole.hits) == len(enough.hits)
    # Items outside the period do not take the bound's room: just enough is enough.
    with Session(world.agent.db) as session:
        stored = len(session.exec(select(StoredItem)).all())
        exact = backtest(session, node, since=since, until=NOW, limit=len(whole.hits))
    assert len(whole.hits) < stored
    assert not exact.truncated
    assert {hit.event.item.key for hit in exact.hits} == {hit.event.item.key for hit in whole.hits}
