"""Subscribing in a real browser against the real ``serve``, as a person does.

E-mail in Hebrew from the form to the alert (the confirmation arrives in the
SMTP fake's inbox, its link is opened and confirmed, then the source
publishes a matching tender), Telegram through the bot's deep link (the
Bot API fake), the live preview while typing, the preview without
JavaScript, and axe on every page of the flow in Hebrew, Arabic and English.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import (
    LANGUAGES,
    LiveSite,
    assert_accessible,
    links_in,
    live_site,
    needs_chromium,
    screenshot,
    visitor,
)
from tests.fakes import ckan, telegram
from tests.fakes.telegram_updates import private_message
from tests.service import wait_until

pytestmark = needs_chromium

#: The columns of the recorded rows that hold dates (dd.mm.yyyy).
DATES = (
    "תאריך פרסום",
    "תאריך עדכון",
    "תאריך אחרון להגשת השגות",
    "תאריך תחילת תקופת התקשרות",
    "תאריך סיום תקופת התקשרות",
)
#: A word none of the recorded rows has; the tenders published during the tests have it.
WORD = "ענן"


def _moved(row: dict[str, Any], shift: timedelta) -> dict[str, Any]:
    moved = dict(row)
    for column in DATES:
        if row.get(column):
            day = datetime.strptime(row[column], "%d.%m.%Y").date() + shift
            moved[column] = day.strftime("%d.%m.%Y")
    return moved


def recent_records() -> list[dict[str, Any]]:
    """``ckan.real_records()`` with every date moved so the newest tender is four days old.

    ``serve`` runs on the real clock and the recorded tenders are from 2017: the
    live preview looks at the last 90 days, so the rows keep their shape and
    spacing and only move in time.
    """
    shift = date.today() - timedelta(days=4) - date(2017, 6, 29)
    return [_moved(row, shift) for row in ckan.real_records()]


def new_tender(number: int, title: str) -> dict[str, Any]:
    """A tender published today, shaped as the recorded rows."""
    today = date.today()
    row = dict(recent_records()[0])
    row |= {"מספר פרסום": str(990000 + number), "שם הליך": title}
    row |= {
        "תאריך פרסום": today.strftime("%d.%m.%Y"),
        "תאריך אחרון להגשת השגות": (today + timedelta(days=30)).strftime("%d.%m.%Y"),
    }
    return row


@dataclass
class Source:
    """What the CKAN fake publishes: the recent rows and the tenders added by tests."""

    site: LiveSite
    added: list[dict[str, Any]] = field(default_factory=list)

    def publish(self, title: str) -> None:
        """Publish one more tender; ``serve`` polls it within a second or two."""
        self.added.append(new_tender(len(self.added), title))
        self.site.source.app = ckan.build_app([*recent_records(), *self.added])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    with live_site(tmp_path_factory.mktemp("subscribe"), recent_records()) as running:
        yield running


@pytest.fixture(scope="module")
def source(site: LiveSite) -> Source:
    return Source(site)


def fill_rule(page: Page, query: str) -> None:
    """Type search words; wait for the live preview to answer them."""
    before = page.locator("#preview-status").inner_text()
    page.locator("#query").fill(query)
    expect(page.locator("#preview-status")).not_to_have_text(before, timeout=10_000)


def stored(site: LiveSite, query: str) -> bool:
    """Whether the site has stored a publication matching ``query`` (its preview lists one)."""
    answer = httpx.get(
        f"{site.url}/preview", params={"query": query}, headers={"HX-Request": "true"}
    )
    return 'href="/items/' in answer.text


def subscribe(page: Page) -> None:
    page.locator("button[name=action][value=subscribe]").click()
    page.wait_for_load_state()


def test_subscribe_by_email_in_hebrew_confirm_and_get_the_alert(
    site: LiveSite, source: Source, browser: Browser
) -> None:
    address = "dana@ngo.example"
    with visitor(browser, site, "he") as page:
        page.goto("/subscribe")
        fill_rule(page, WORD)
        page.locator("#channel-email").check()
        page.locator("#email").fill(address)
        subscribe(page)
        expect(page.locator("h1")).to_have_text("נא לבדוק את תיבת הדואר")
        [confirmation] = site.mail_to(address)
        assert confirmation["Content-Language"] == "he"
        [link] = [url for url in links_in(confirmation) if "/confirm/" in url]
        # A matching tender while the address has not confirmed: it must not be sent.
        source.publish(f"שירותי {WORD} פינגווין")
        wait_until(lambda: stored(site, "פינגווין"), 30, "the tender published before confirming")
        page.goto(link)
        expect(page.locator("h1")).to_have_text("אישור המינוי")
        page.get_by_role("button", name="אישור", exact=True).click()
        expect(page.locator("h1")).to_have_text("המינוי פעיל")
        expect(page.locator("a[href*='/manage/']")).to_have_count(1)
        expect(page.locator("a[href$='.ics']")).to_have_count(1)
    source.publish(f"שירותי {WORD} לעמותות")
    alert = site.mail_to(address, count=2)[1]
    assert "לעמותות" in str(alert["Subject"])
    assert all("פינגווין" not in str(m["Subject"]) for m in site.mail_to(address))


def test_connect_telegram_through_the_deep_link_and_get_the_alert(
    site: LiveSite, source: Source, browser: Browser
) -> None:
    chat = 8001
    with visitor(browser, site, "he") as page:
        page.goto("/subscribe")
        fill_rule(page, f"{WORD} OR מחשוב")
        page.locator("#channel-telegram").check()
        subscribe(page)
        expect(page.locator("h1")).to_have_text("חיבור צ'אט בטלגרם")
        screenshot(page, "subscribe-telegram-he")
        href = page.locator("a[href*='?start=']").get_attribute("href")
        assert href is not None
        found = re.fullmatch(r"https://t\.me/smart_agent_test_bot\?start=([A-Za-z0-9_-]+)", href)
        assert found is not None
        expect(page.locator(f"a[href$='?startgroup={found[1]}']")).to_have_count(1)
    telegram.push(site.bot, private_message(chat, f"/start {found[1]}", language="he"))
    wait_until(lambda: site.telegram_texts(str(chat)), 30, "the bot's answer")
    assert site.telegram_texts(str(chat))[0].startswith("חובר")
    source.publish(f"מחשוב {WORD} לרשויות")
    wait_until(
        lambda: any("לרשויות" in text for text in site.telegram_texts(str(chat))), 30, "the alert"
    )


@pytest.mark.parametrize(("language", "matches", "error"), [
    ("he", "פרסומים מתאימים", "שגיאה בכלל"),
    ("en", "matching publications", "Error in the rule"),
])  # fmt: skip
def test_the_live_preview_follows_the_typing_and_marks_a_broken_query(
    site: LiveSite, browser: Browser, language: str, matches: str, error: str
) -> None:
    with visitor(browser, site, language) as page:
        page.goto("/subscribe")
        fill_rule(page, "שירותי")
        expect(page.locator("#preview-status")).to_contain_text(matches)
        expect(page.locator("#preview table tbody tr").first).to_be_attached()
        expect(page.locator("#preview a[href^='/items/']").first).to_be_visible()
        assert_accessible(page)
        screenshot(page, f"subscribe-{language}")
        fill_rule(page, 'שירותי "unclosed')
        expect(page.locator("#preview-status")).to_contain_text(error)
        expect(page.locator("#preview mark")).to_have_text('"')
        assert_accessible(page)


def test_without_javascript_the_preview_button_shows_the_preview(
    site: LiveSite, browser: Browser
) -> None:
    context = browser.new_context(base_url=site.url, locale="en-GB", java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/subscribe")
        page.locator("#query").fill("שירותי")
        page.locator("button[name=action][value=preview]").click()
        page.wait_for_load_state()
        expect(page.locator("#preview-status")).to_contain_text("matching publications")
        expect(page.locator("#query")).to_have_value("שירותי")
        expect(page.locator("[aria-invalid]")).to_have_count(0)
    finally:
        context.close()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_of_subscribing_is_accessible(
    site: LiveSite, browser: Browser, language: str
) -> None:
    address = f"axe-{language}@ngo.example"
    with visitor(browser, site, language) as page:
        # The form with its errors shown: a broken query and a wrong address.
        page.goto("/subscribe?query=שירותי")
        expect(page.locator("#preview-status")).not_to_be_empty()
        page.locator("#query").fill('"unclosed')
        page.locator("#channel-email").check()
        page.locator("#email").fill("not an address")
        subscribe(page)
        expect(page.locator("#email")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#query-error mark")).to_be_visible()
        assert_accessible(page)
        # Feeds.
        page.goto("/subscribe?query=שירותי")
        page.locator("#channel-rss").check()
        subscribe(page)
        expect(page.locator("a[href$='.xml']")).to_have_count(1)
        assert_accessible(page)
        # Telegram.
        page.goto("/subscribe?query=שירותי")
        page.locator("#channel-telegram").check()
        subscribe(page)
        expect(page.locator("a[href*='?start=']")).to_have_count(1)
        assert_accessible(page)
        # E-mail: check your inbox, then the confirmation link's pages.
        page.goto("/subscribe?query=שירותי")
        page.locator("#channel-email").check()
        page.locator("#email").fill(address)
        subscribe(page)
        expect(page.locator("h1")).to_be_visible()
        assert page.url.endswith("/subscribe")
        assert_accessible(page)
        [message] = site.mail_to(address)
        assert message["Content-Language"] == language
        [link] = [url for url in links_in(message) if "/confirm/" in url]
        page.goto(link)
        expect(page.locator("main form button[type=submit]")).to_have_count(1)
        assert_accessible(page)
        page.locator("main form button[type=submit]").click()
        expect(page.locator("a[href*='/manage/']")).to_have_count(1)
        assert_accessible(page)
        assert page.get_attribute("html", "lang") == language
