"""The public pages over HTTP: home, search with the rule's filters, an item's history, status."""

from __future__ import annotations

import html
import re
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session, select

from agent.config import build_config
from agent.i18n import flat_keys
from agent.models import StoredItem
from agent.service import Agent
from agent.web import create_app
from agent.web.public_search import search
from agent.web.public_status import Failure, failure_of
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan
from tests.service import Switch

# One site for the module (the tests only read it), on one event loop for every test.
pytestmark = pytest.mark.asyncio(loop_scope="module")

#: The first poll; the source changes a tender two hours later, and the pages are read then.
FIRST = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LATER = FIRST + timedelta(hours=2)
#: The tender whose title and deadline the source changes (its data.gov.il number).
CHANGED = "598885"
#: Copies of the recorded tenders under other numbers, so tenders alone fill two pages.
EXTRA = 10


@dataclass
class Site:
    agent: Agent
    url: str
    broken_url: str

    def item_id(self, number: str) -> int:
        """The stored id of the item with data.gov.il publication ``number``."""
        with Session(self.agent.db) as session:
            rows = session.exec(select(StoredItem)).all()
        return next(r.id for r in rows if r.id is not None and r.key.split("/")[1] == number)


def records() -> list[dict[str, Any]]:
    """The recorded tenders and exemptions, and copies of the tenders under new numbers."""
    real = ckan.real_records()
    tenders = [r for r in real if r["סוג הליך"] == "מכרז פומבי"]
    copies = [
        {**r, "מספר פרסום": f"9{index:05d}", "שם הליך": f"{r['שם הליך']} (העתק {index})"}
        for index, r in enumerate(tenders[:EXTRA])
    ]
    return [*real, *copies]


def changed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same rows, with one tender's title and deadline changed by the source."""
    return [
        {**r, "שם הליך": r["שם הליך"] + " (עדכון)", "תאריך אחרון להגשת השגות": "20.07.2017"}
        if r["מספר פרסום"] == CHANGED
        else r
        for r in rows
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    tmp_path = tmp_path_factory.mktemp("public")
    rows = records()
    source = Switch(ckan.build_app(rows))
    now = [FIRST]
    with serve(source) as source_url, serve(ckan.build_app(fail="html")) as broken_url:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(tmp_path),
                    "templates_dir": str(ROOT / "templates"),
                    "public_url": "https://alerts.example.org",
                    "signing_key": "public-pages-test-key",
                },
                "sources": {
                    "tenders": {"kind": "ckan", "base_url": source_url},
                    "broken": {"kind": "ckan", "base_url": broken_url},
                    "paused": {"kind": "ckan", "base_url": broken_url, "enabled": False},
                },
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=lambda: now[0]) as agent:
            await agent.poll_all()
            source.app = ckan.build_app(changed(rows))
            now[0] = LATER
            await agent.poll_all()
            with serve(create_app(agent)) as url:
                yield Site(agent, url, broken_url)


async def get(site: Site, path: str, **params: str | list[str]) -> httpx.Response:
    """GET ``path``; ``params`` (when given) replace its query, as httpx does."""
    async with httpx.AsyncClient(base_url=site.url) as client:
        return await client.get(path, params=params or None)


def text(response: httpx.Response) -> str:
    """The page's HTML with entities decoded, to look for words in."""
    return html.unescape(response.text)


def cards(response: httpx.Response) -> list[str]:
    """The items listed on the page, as their card's HTML."""
    return re.findall(r'<li class="card">(.*?)</li>', text(response), re.S)


def link(response: httpx.Response, rel: str) -> str:
    """The pager's ``rel`` link."""
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', response.text)
    assert found is not None, f"no {rel} link"
    return html.unescape(found[1])


def total(response: httpx.Response) -> int:
    found = re.search(r"<strong>([\d,]+)</strong>", response.text)
    assert found is not None
    return int(found[1].replace(",", ""))


async def test_home_shows_the_newest_items_a_search_box_and_where_to_go(site: Site) -> None:
    page = await get(site, "/")
    assert page.status_code == 200
    assert '<html lang="he" dir="rtl">' in page.text
    assert len(cards(page)) == 8
    assert '<form method="get" action="/items" role="search"' in page.text
    assert '<label for="home-query">' in page.text
    assert 'href="/subscribe"' in page.text
    assert 'href="/status"' in page.text
    assert "בחלק מהמקורות יש תקלה" in text(page), "the verdict: one source fails"


async def test_items_are_paged_twenty_at_a_time_newest_first(site: Site) -> None:
    first = await get(site, "/items", lang="en")
    assert first.status_code == 200
    assert total(first) == 31
    assert len(cards(first)) == 20
    assert "Page 1 of 2" in first.text
    second = await get(site, link(first, "next"))
    assert len(cards(second)) == 11
    assert dict(parse_qsl(urlsplit(link(second, "prev")).query))["page"] == "1"
    # Newest first: the copies share their originals' publication dates, and the
    # exemptions without one are dated by when the agent first saw them (2026).
    dated = re.findall(r"Publication date: (\d+ \w+ \d{4})", text(first))
    years = [int(day.split()[-1]) for day in dated]
    assert years == sorted(years, reverse=True)


async def test_pager_links_keep_the_filters(site: Site) -> None:
    first = await get(site, "/items", kinds="tender", lang="en")
    assert total(first) == 21
    assert all("Tender" in card for card in cards(first))
    following = link(first, "next")
    assert ("kinds", "tender") in parse_qsl(urlsplit(following).query)
    second = await get(site, following)
    assert len(cards(second)) == 1
    assert total(second) == 21


@pytest.mark.parametrize(
    ("params", "count", "expected"),
    [
        ({"kinds": "exemption"}, 10, "Tender exemption"),
        ({"query": "אמבולנס"}, 2, "אמבולנס"),
        ({"publishers": "משרד החינוך"}, 2, "משרד החינוך"),
        ({"query": "חשמל", "kinds": ["tender", "exemption"]}, 2, "חשמל"),
    ],
)
async def test_the_rules_filters_narrow_the_search(
    site: Site, params: dict[str, str | list[str]], count: int, expected: str
) -> None:
    page = await get(site, "/items", lang="en", **params)
    found = cards(page)
    assert total(page) == count
    assert len(found) == count
    assert all(expected in card for card in found)


async def test_a_bounded_search_still_finds_the_newest_first(site: Site) -> None:
    with Session(site.agent.db) as session:
        everything = search(session, None, LATER, size=100)
        bounded = search(session, None, LATER, size=100, limit=5)
    assert not everything.bounded
    assert everything.total == 31
    assert bounded.bounded
    assert bounded.total == 10, "the 5 last published and the 5 last seen with no date"
    assert [r.id for r in bounded.rows[:5]] == [r.id for r in everything.rows[:5]]


async def test_a_page_number_out_of_range_shows_a_page_that_exists(site: Site) -> None:
    assert "Page 2 of 2" in (await get(site, "/items", page="999999999", lang="en")).text
    assert "Page 1 of 2" in (await get(site, "/items", page="-3", lang="en")).text
    assert "Page 1 of 2" in (await get(site, "/items", page="two", lang="en")).text


async def test_a_bad_query_is_marked_where_it_is_wrong_and_lists_nothing(site: Site) -> None:
    page = await get(site, "/items", query="(מחשוב OR", lang="en")
    assert page.status_code == 200
    body = text(page)
    assert 'id="query-error" role="alert"' in body
    assert 'aria-invalid="true" aria-describedby="query-error query-hint"' in body
    assert "<mark>" in body
    assert "The search has an error" in body
    assert not cards(page)
    assert "Alert me about this search" not in body


async def test_a_bad_number_is_shown_at_its_field(site: Site) -> None:
    page = await get(site, "/items", amount_min="lots", lang="en")
    body = text(page)
    assert 'id="amount_min-error"' in body
    assert 'id="amount_min" name="amount_min" value=""' in body or "amount_min" in body
    assert not cards(page)


async def test_alert_me_about_this_search_carries_every_filter(site: Site) -> None:
    page = await get(site, "/items", query="שירותי", kinds="tender", amount_min="1000", lang="en")
    found = re.search(r'<a class="button secondary" href="(/subscribe[^"]*)">Alert me', page.text)
    assert found is not None
    target = urlsplit(html.unescape(found[1]))
    assert target.path == "/subscribe"
    assert sorted(parse_qsl(target.query)) == [
        ("amount_min", "1000"),
        ("kinds", "tender"),
        ("query", "שירותי"),
    ]
    everything = await get(site, "/items", lang="en")
    assert '<a class="button secondary" href="/subscribe">Alert me' in everything.text


async def test_an_item_page_shows_its_fields_and_the_history_of_its_changes(site: Site) -> None:
    item_id = site.item_id(CHANGED)
    page = await get(site, f"/items/{item_id}", lang="en")
    assert page.status_code == 200
    body = text(page)
    assert '<h1 dir="auto">מתן שירותי כוח אדם זמני בעיתות חירום (עדכון)</h1>' in body
    for label in ("Type", "Publisher", "Publishing unit", "Amount", "Deadline", "Publication date"):
        assert f"<dt>{label}</dt>" in body
    assert "<dd>20 July 2017 (Deadline passed)</dd>" in body
    assert 'href="https://mr.gov.il/' in body or 'rel="external' in body
    history = body[body.index('id="history"') :]
    assert "30 November 2026" in history, "first seen, the start of the history"
    assert "first seen by the service" in history
    assert "Deadline changed, Updated" in history
    assert re.search(
        r'<th scope="row">Title</th><td dir="auto">מתן שירותי כוח אדם זמני בעיתות חירום</td>'
        r'<td dir="auto">מתן שירותי כוח אדם זמני בעיתות חירום \(עדכון\)</td>',
        history,
    )
    assert re.search(
        r'<th scope="row">Deadline</th><td dir="auto">10 July 2017</td>'
        r'<td dir="auto">20 July 2017</td>',
        history,
    )
    assert history.count('<th scope="row">Title</th>') == 1, "one change, shown once"


async def test_an_unchanged_item_has_only_its_first_sighting(site: Site) -> None:
    page = await get(site, f"/items/{site.item_id('599991')}", lang="he")
    body = text(page)
    assert "נקלט לראשונה בשירות" in body
    assert "לא השתנה דבר מאז." in body
    assert "<table>" not in body


async def test_alert_me_about_similar_names_the_kind_and_publisher(site: Site) -> None:
    page = await get(site, f"/items/{site.item_id(CHANGED)}", lang="en")
    found = re.search(r'href="(/subscribe\?[^"]*)">Alert me about similar', page.text)
    assert found is not None
    params = parse_qsl(urlsplit(html.unescape(found[1])).query)
    assert params == [("kinds", "tender"), ("publishers", "משרד האוצר")]


@pytest.mark.parametrize("path", ["/items/999999", "/items/99999999999999999999999", "/items/x"])
async def test_an_unknown_item_is_404(site: Site, path: str) -> None:
    page = await get(site, path, lang="en")
    assert page.status_code == 404
    assert "Page not found" in page.text


async def test_status_page_tells_a_failing_source_from_a_quiet_one(site: Site) -> None:
    page = await get(site, "/status", lang="en")
    assert page.status_code == 200
    body = text(page)
    assert "Some sources have a problem" in body
    rows = dict(re.findall(r'<th scope="row"><bdi>([\w-]+)</bdi></th>(.*?)</tr>', body, re.S))
    assert set(rows) == {"tenders", "broken", "paused"}
    assert 'class="status-ok">Working<' in rows["tenders"]
    assert "30 November 2026" in rows["tenders"], "its last successful read"
    assert "<td>31</td>" in rows["tenders"], "new in the last day"
    assert 'class="status-failing">Failing<' in rows["broken"]
    assert "The source's answer could not be read." in rows["broken"]
    assert "<td>Not yet</td>" in rows["broken"]
    assert "30 November 2026" in rows["broken"], "failing since the first poll"
    assert "Turned off" in rows["paused"]
    # The raw error names the source's address; the public never sees it.
    assert urlsplit(site.broken_url).netloc not in body
    assert "expected JSON" not in body


@pytest.mark.parametrize(("language", "direction"), [("he", "rtl"), ("ar", "rtl"), ("en", "ltr")])
@pytest.mark.parametrize("path", ["/", "/items", "/items?query=(", "/status"])
async def test_every_public_page_speaks_each_language(
    site: Site, path: str, language: str, direction: str
) -> None:
    async with httpx.AsyncClient(base_url=site.url) as client:
        page = await client.get(f"{path}{'&' if '?' in path else '?'}lang={language}")
        item = await client.get(f"/items/{site.item_id(CHANGED)}?lang={language}")
    for answer in (page, item):
        assert answer.status_code == 200
        assert f'<html lang="{language}" dir="{direction}">' in answer.text
        assert answer.text.count("<h1") == 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("https://x/api: blocked (HTTP 403 or a challenge page)", Failure.BLOCKED),
        ("https://x/api?key=s3cret: ConnectError: [Errno 111] refused", Failure.UNREACHABLE),
        ("https://x/api: ReadTimeout: timed out", Failure.UNREACHABLE),
        ("https://x/api: HTTP 503", Failure.SERVER_ERROR),
        ("returned no items where the last poll had 20", Failure.EMPTIED),
        ("https://x/api: expected JSON, got HTML (text/html)", Failure.UNREADABLE),
        ("KeyError: 'x'", Failure.UNREADABLE),
    ],
)
async def test_a_failure_is_told_in_a_category_never_in_its_own_words(
    error: str, kind: Failure
) -> None:
    assert failure_of(error) is kind


async def test_no_string_is_hidden_by_a_dict_method() -> None:
    # Templates read ``t.public.clear`` as the dict's ``clear`` method, not the string.
    for language in ("he", "ar", "en"):
        path = ROOT / "templates" / "web" / "i18n" / language / "public.toml"
        keys = flat_keys(tomllib.loads(path.read_text(encoding="utf-8")))
        assert not {part for key in keys for part in key.split(".")} & set(dir(dict))
