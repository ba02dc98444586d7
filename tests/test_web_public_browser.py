"""The public pages in a real browser: a person searches, opens an item, sees its history."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser import (
    LANGUAGES,
    LiveSite,
    assert_accessible,
    live_site,
    needs_chromium,
    screenshot,
    visitor,
)
from tests.fakes import ckan
from tests.service import wait_until

pytestmark = needs_chromium

#: The tender the source changes (its data.gov.il number) and its title before and after.
CHANGED = "598885"
TITLE = "מתן שירותי כוח אדם זמני בעיתות חירום"
UPDATED = f"{TITLE} (עדכון)"


def changed_records() -> list[dict[str, Any]]:
    """The recorded rows, with one tender's title and deadline changed at the source."""
    return [
        {**r, "שם הליך": UPDATED, "תאריך אחרון להגשת השגות": "20.07.2017"}
        if r["מספר פרסום"] == CHANGED
        else r
        for r in ckan.real_records()
    ]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    with live_site(tmp_path_factory.mktemp("public")) as running:
        yield running


def change_the_source(site: LiveSite) -> None:
    """The source changes the tender; ``serve`` polls every second and records the update."""
    site.source.app = ckan.build_app(changed_records())

    def updated() -> bool:
        found = httpx.get(f"{site.url}/items", params={"query": "עדכון", "lang": "en"})
        return "(עדכון)" in found.text

    wait_until(updated, 30, "the poll that sees the changed tender")


@pytest.fixture(scope="module")
def item_path(site: LiveSite) -> str:
    """The changed tender's page, once its change is recorded."""
    change_the_source(site)
    with httpx.Client(base_url=site.url) as client:
        found = client.get("/items", params={"query": '"כוח אדם זמני"', "lang": "en"})
    start = found.text.index('href="/items/') + len('href="')
    return found.text[start : found.text.index('"', start)]


def test_a_person_searches_opens_an_item_and_follows_its_changes(
    site: LiveSite, browser: Browser
) -> None:
    with visitor(browser, site, "he") as page:
        page.goto("/")
        page.get_by_role("link", name="לכל הפרסומים").click()
        page.get_by_label("מילות חיפוש").fill("שירותי")
        page.get_by_role("checkbox", name="מכרז", exact=True).check()
        page.get_by_role("button", name="חיפוש", exact=True).click()
        params = parse_qsl(urlsplit(page.url).query)
        assert ("query", "שירותי") in params
        assert ("kinds", "tender") in params
        cards = page.locator("li.card")
        expect(cards.first).to_be_visible()
        assert cards.count() >= 2
        for badge in cards.locator(".badge").all_inner_texts():
            assert badge == "מכרז"
        expect(page.get_by_role("checkbox", name="מכרז", exact=True)).to_be_checked()

        page.get_by_role("link", name=TITLE).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
        expect(page.get_by_text("לא השתנה דבר מאז.")).to_be_visible()

        change_the_source(site)
        page.reload()
        expect(page.get_by_role("heading", level=1)).to_have_text(UPDATED)
        history = page.locator("ol.history")
        expect(history.get_by_text("נקלט לראשונה בשירות")).to_be_visible()
        title_row = history.get_by_role("row", name="כותרת")
        expect(title_row.get_by_role("cell").nth(0)).to_have_text(TITLE)
        expect(title_row.get_by_role("cell").nth(1)).to_have_text(UPDATED)
        deadline_row = history.get_by_role("row", name="מועד אחרון")
        expect(deadline_row.get_by_role("cell").nth(1)).to_have_text("20 ביולי 2017")

        page.get_by_role("navigation", name="ניווט ראשי").get_by_role(
            "link", name="מצב המקורות"
        ).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("מצב המקורות")
        expect(page.get_by_text("כל המקורות פועלים.")).to_be_visible()
        row = page.get_by_role("row", name="datagov-tenders")
        expect(row.get_by_text("פועל", exact=True)).to_be_visible()


def test_alert_me_about_this_search_lands_on_subscribe_with_the_filters(
    site: LiveSite, browser: Browser
) -> None:
    with visitor(browser, site, "en") as page:
        page.goto("/items")
        page.get_by_label("Search words").fill("שירותי")
        page.get_by_role("checkbox", name="Tender exemption").check()
        page.get_by_text("More filters").click()
        page.get_by_label("Minimum amount (₪)").fill("5000")
        page.get_by_role("button", name="Search", exact=True).click()
        page.get_by_role("link", name="Alert me about this search").click()
        page.wait_for_url("**/subscribe?**")
        target = urlsplit(page.url)
        assert target.path == "/subscribe"
        assert sorted(parse_qsl(target.query)) == [
            ("amount_min", "5000"),
            ("kinds", "exemption"),
            ("query", "שירותי"),
        ]


def test_a_mistyped_query_is_shown_where_it_is_wrong(site: LiveSite, browser: Browser) -> None:
    with visitor(browser, site, "en") as page:
        page.goto("/items")
        page.get_by_label("Search words").fill('"unclosed phrase')
        page.get_by_role("button", name="Search", exact=True).click()
        box = page.get_by_label("Search words")
        expect(box).to_have_attribute("aria-invalid", "true")
        expect(page.get_by_role("alert")).to_contain_text("Error in the rule")
        expect(page.locator("li.card")).to_have_count(0)
        assert_accessible(page)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["home", "items", "item", "status"])
def test_every_public_page_is_accessible(
    site: LiveSite, browser: Browser, item_path: str, name: str, language: str
) -> None:
    path = {"home": "/", "items": "/items", "item": item_path, "status": "/status"}[name]
    with visitor(browser, site, language) as page:
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == 200
        assert_accessible(page)
        if language in ("he", "en"):
            screenshot(page, f"{name}-{language}")


def test_keyboard_alone_reaches_a_result(site: LiveSite, browser: Browser) -> None:
    with visitor(browser, site, "en") as page:
        page.goto("/")
        page.get_by_label("Search publications").focus()
        page.keyboard.type("אמבולנס")
        page.keyboard.press("Enter")
        page.wait_for_url("**/items?**")
        link = page.locator("li.card a").first
        link.focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**/items/*")
        expect(page.get_by_role("heading", level=1)).to_contain_text("אמבולנס")
