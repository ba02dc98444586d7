"""Managing and leaving subscriptions from an alert e-mail, in a real browser, as a person does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

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
from tests.fakes import ckan

pytestmark = needs_chromium

#: Seconds to wait for an e-mail.
WAIT = 120.0

DANA, CONTROL, LEAVER = "dana@ngo.example", "control@ngo.example", "leaver@ngo.example"

SUBSCRIPTIONS = f"""
[[subscriptions]]
name = "מכרזי אנרגיה סולארית"
query = "סולאריות"
channels = ["email"]
email = "{DANA}"
language = "he"

[[subscriptions]]
name = "ייעוץ והנדסה"
query = "ייעוץ"
kinds = ["tender"]
channels = ["email", "rss"]
email = "{DANA}"
language = "he"
cadence = "weekly"

[[subscriptions]]
name = "solar, for comparison"
query = "סולאריות"
channels = ["email"]
email = "{CONTROL}"
language = "en"

[[subscriptions]]
name = "solar, then goodbye"
query = "סולאריות"
channels = ["email"]
email = "{LEAVER}"
language = "ar"
"""


def tender(number: str, title: str) -> dict[str, Any]:
    """A new tender: a recorded one's shape with another number and title."""
    return {**ckan.real_records()[0], "מספר פרסום": number, "שם הליך": title}


#: What the source publishes: first the recorded tenders, then one new solar tender, then another.
RECORDED = ckan.real_records()
FIRST = [*RECORDED, tender("990001", "הקמת מערכות סולאריות על גגות בתי ספר")]
SECOND = [*FIRST, tender("990002", "תחזוקת מערכות סולאריות בבתי חולים")]


@dataclass
class Alerted:
    """The site, once the first new tender's alert reached everyone: their links."""

    site: LiveSite
    links: dict[str, list[str]]

    def link(self, address: str, kind: str) -> str:
        """The ``kind`` (``manage``, ``unsubscribe``) link in ``address``'s alert."""
        return next(link for link in self.links[address] if f"/{kind}/" in link)


@pytest.fixture(scope="module")
def alerted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alerted]:
    folder = tmp_path_factory.mktemp("manage")
    with live_site(folder, RECORDED) as site:
        (folder / "people.toml").write_text(SUBSCRIPTIONS, encoding="utf-8")
        site.cli("subscriptions", "import", "people.toml")
        site.source.app = ckan.build_app(FIRST)
        # Generous waits: the machine may be busy with other test runs.
        mails = {a: site.mail_to(a, timeout=WAIT)[0] for a in (DANA, CONTROL, LEAVER)}
        yield Alerted(site, {address: links_in(mail) for address, mail in mails.items()})


def test_a_subscriber_changes_how_often_then_unsubscribes_from_the_alert(
    alerted: Alerted, browser: Browser
) -> None:
    site = alerted.site
    [alert] = site.mail_to(DANA)
    assert "סולאריות" in str(alert["Subject"]) + str(alert.get_body(("plain",)))
    with visitor(browser, site, "he") as page:
        page.goto(alerted.link(DANA, "manage"))
        expect(page.get_by_role("heading", level=1)).to_have_text("המינויים שלך")
        card = page.locator("li.card").filter(has_text="מכרזי אנרגיה סולארית")
        expect(card).to_contain_text("מיד, כשהן מגיעות")
        expect(page.locator("li.card")).to_have_count(2)  # both of Dana's, no one else's
        card.get_by_role("link", name=re.compile("שינוי הגדרות")).click()
        page.get_by_label("סיכום יומי").check()
        page.get_by_role("button", name="שמירת התדירות").click()
        expect(page.get_by_role("status")).to_contain_text("נשמר")
        expect(card).to_contain_text("סיכום יומי")

        page.goto(alerted.link(DANA, "unsubscribe"))
        expect(page.get_by_role("heading", level=1)).to_have_text("הסרה מרשימת התפוצה")
        page.get_by_role("button", name="הסרה מרשימת התפוצה").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("ההרשמה בוטלה")
        expect(page.get_by_role("link", name="ניהול המינויים שלך")).to_be_visible()
        expect(page.get_by_role("link", name="הרשמה מחדש")).to_be_visible()

    # Another new tender: the other subscriber hears of it, the one who left does not.
    site.source.app = ckan.build_app(SECOND)
    site.mail_to(CONTROL, 2, timeout=WAIT)
    assert len(site.mail_to(DANA)) == 1


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_manage_pages_are_accessible(alerted: Alerted, browser: Browser, language: str) -> None:
    with visitor(browser, alerted.site, language) as page:
        page.goto(f"{alerted.link(DANA, 'manage')}?lang={language}")
        assert page.get_attribute("html", "lang") == language
        assert_accessible(page)
        if language in ("he", "en"):
            screenshot(page, f"manage-{language}")
        page.locator("li.card").first.locator("a.button").click()
        assert_accessible(page)
        page.locator("#query").fill('"unclosed')
        page.locator("form[action$='/edit'] button[type=submit]").click()
        expect(page.locator("#query")).to_have_attribute("aria-invalid", "true")
        assert_accessible(page)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_unsubscribe_pages_are_accessible(
    alerted: Alerted, browser: Browser, language: str
) -> None:
    with visitor(browser, alerted.site, language) as page:
        page.goto(f"{alerted.link(CONTROL, 'unsubscribe')}?lang={language}")
        assert page.get_attribute("html", "lang") == language
        assert_accessible(page)
        page.locator("main form button[type=submit]").click()
        expect(page.locator("main a[href^='/manage/']")).to_be_visible()
        assert page.get_attribute("html", "lang") == language
        assert_accessible(page)
        page.locator("main a[href^='/manage/']").click()
        assert_accessible(page)  # paused, with a button to resume
        page.locator("li.card form[action$='/resume'] button").click()
        expect(page.get_by_role("status")).to_be_visible()


def test_leaving_everything_asks_first_then_says_goodbye(
    alerted: Alerted, browser: Browser
) -> None:
    with visitor(browser, alerted.site, "ar") as page:
        page.goto(alerted.link(LEAVER, "manage"))
        assert page.get_attribute("html", "lang") == "ar"  # the subscription's language
        page.locator("main a[href$='/leave']").click()
        assert_accessible(page)
        page.locator("main form button.danger").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("إلى اللقاء")
        assert page.url.endswith("/manage/goodbye")
        for language in LANGUAGES:
            page.goto(f"/manage/goodbye?lang={language}")
            assert page.get_attribute("html", "lang") == language
            assert_accessible(page)
        # The link is gone with the subscriptions.
        answer = page.goto(alerted.link(LEAVER, "manage"))
        assert answer is not None
        assert answer.status == 404
        assert_accessible(page)
