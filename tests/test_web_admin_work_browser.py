"""The console in a real browser: edit a rule after seeing its effect, replay a dead alert.

``serve`` runs for real (``tests.browser.live_site``) with ``max_attempts = 1``,
so one deferral (451 at DATA, from the SMTP fake) makes a delivery dead, as a
mail server that keeps refusing would after all its attempts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

import notifiers
from tests.browser import (
    LANGUAGES,
    LiveSite,
    assert_accessible,
    live_site,
    log_in,
    needs_chromium,
    screenshot,
    visitor,
)
from tests.fakes import ckan
from tests.service import wait_until

pytestmark = needs_chromium

STAFF_TENDER = "מתן שירותי כוח אדם זמני בעיתות חירום"
AMBULANCE_TENDER = "מתן שירותי אמבולנס פרטי להסעת מטופלים"
CATH_LAB = "הקמת חדר צנתורים"
CATH_ADDRESS = "cath-lab@ngo.example"


def _day(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def recent_records() -> list[dict[str, Any]]:
    """The recorded rows, with their dates moved to the last days.

    ``serve`` runs on the real clock and the recordings are from 2017; the
    preview looks back 30 days, so the same rows are published recently here.
    """
    today = datetime.now(UTC).date()
    moved = []
    for number, record in enumerate(ckan.real_records()):
        row = dict(record)
        for column in ("תאריך פרסום", "תאריך עדכון"):
            if row.get(column):
                row[column] = _day(today - timedelta(days=1 + number))
        if row.get("תאריך אחרון להגשת השגות"):
            row["תאריך אחרון להגשת השגות"] = _day(today + timedelta(days=30))
        moved.append(row)
    return moved


def published_again(records: list[dict[str, Any]], title: str, number: str) -> dict[str, Any]:
    """A new tender: the one called ``title``, published again today under a new number."""
    [row] = [dict(r) for r in records if r.get("שם הליך") == title]
    row["מספר פרסום"] = number
    row["תאריך פרסום"] = _day(datetime.now(UTC).date())
    return row


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    folder = tmp_path_factory.mktemp("admin-work")
    with live_site(folder, recent_records(), agent_extra="max_attempts = 1") as running:
        for name, query, address in (
            ("staff", '"כוח אדם"', "staff@ngo.example"),
            ("cath-lab", "צנתורים", CATH_ADDRESS),
            ("services", "שירותי", "services@ngo.example"),
        ):
            running.cli(
                "subscriptions", "add", name, "-q", query, "--channel", "email", "--email", address
            )
        yield running


@pytest.fixture(scope="module")
def dead_delivery(site: LiveSite) -> int:
    """A delivery to ``cath-lab`` the mail server deferred once: dead, with one attempt.

    One to ``services`` dies with it and is left dead, so the ledger shows both.
    """
    site.mail.answers["DATA"] = "451 4.3.0 Try again later"
    records = recent_records()
    again = [
        published_again(records, CATH_LAB, "999001"),
        published_again(records, AMBULANCE_TENDER, "999002"),
    ]
    site.source.app = ckan.build_app([*records, *again])

    def dead() -> list[str]:
        return site.cli("deliveries", "list", "--status", "dead").splitlines()

    wait_until(lambda: len(dead()) >= 2, 60, "the new tenders' deliveries to die")
    site.mail.answers.clear()
    [line] = [line for line in dead() if "cath-lab" in line]
    return int(line.split()[0])


def subscription_id(page: Page, name: str) -> str:
    """The console's id of subscription ``name``, read off the list."""
    page.goto("/admin/subscriptions?sort=name")
    href = page.get_by_role("link", name=name, exact=True).get_attribute("href")
    assert href is not None
    return href.rsplit("/", 1)[1]


def preview_edit(page: Page, query: str) -> None:
    """Type ``query`` into the rule editor and ask what it would change."""
    page.locator("#query").fill(query)
    page.locator("form[action$='/preview#preview'] button[type=submit]").click()
    page.wait_for_load_state()


def test_an_admin_sees_what_an_edit_would_change_then_saves_it(
    site: LiveSite, browser: Browser
) -> None:
    with visitor(browser, site, "en") as page:
        log_in(page)
        page.goto("/admin/subscriptions")
        page.get_by_role("link", name="staff", exact=True).click()
        expect(page.locator("h1")).to_have_text("staff")
        preview_edit(page, "אמבולנס")
        added = page.locator("table[aria-labelledby=added-heading]")
        removed = page.locator("table[aria-labelledby=removed-heading]")
        expect(added.get_by_role("link", name=AMBULANCE_TENDER)).to_be_visible()
        expect(removed.get_by_role("link", name=STAFF_TENDER)).to_be_visible()
        assert re.fullmatch(r"/items/\d+", added.locator("a").first.get_attribute("href") or "")
        page.get_by_role("button", name="Save this rule").click()
        expect(page.get_by_role("status")).to_have_text("Your changes are saved.")
        expect(page.locator("dl.details bdi.query")).to_have_text("אמבולנס")
        # what the rule now matches is the ambulance tender only
        preview_edit(page, "אמבולנס")
        expect(page.locator("#preview")).to_contain_text("Would be added: 0")


def test_an_admin_replays_a_dead_delivery_and_the_mail_arrives(
    site: LiveSite, browser: Browser, dead_delivery: int
) -> None:
    with visitor(browser, site, "en") as page:
        log_in(page)
        page.goto("/admin/deliveries")
        page.get_by_label("Status").select_option("dead")
        page.get_by_role("button", name="Show").click()
        row = page.locator("tbody tr", has_text="cath-lab")
        expect(row).to_contain_text("Failed for good")
        expect(row).to_contain_text("451 4.3.0 Try again later")
        row.locator(f"a[href='/admin/deliveries/{dead_delivery}']").click()
        expect(page.locator("h1")).to_have_text(f"Delivery {dead_delivery}")
        expect(page.locator("main")).to_contain_text("צנתורים")  # why it matched
        page.get_by_role("button", name="Send again").click()
        expect(page.get_by_role("status")).to_contain_text("queued to be sent again")
        [mail] = site.mail_to(CATH_ADDRESS)
        assert CATH_LAB in str(mail["Subject"]) or CATH_LAB in mail.as_string()
        # The mail is in; the worker records it a moment later: look again until it has.
        wait_until(lambda: _reloaded(page, "dl.details", "Sent"), what="the send recorded")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_console_pages_are_accessible(
    site: LiveSite, browser: Browser, dead_delivery: int, language: str
) -> None:
    with visitor(browser, site, language) as page:
        log_in(page)
        page.goto("/admin/subscriptions")
        assert_accessible(page)
        page.goto(f"/admin/subscriptions/{subscription_id(page, 'cath-lab')}")
        preview_edit(page, 'צנתורים OR "כוח אדם"')
        expect(page.locator("#preview table")).to_have_count(1)
        assert_accessible(page)
        if language != "ar":
            screenshot(page, f"admin-subscription-{language}")
        page.goto("/admin/deliveries")
        assert_accessible(page)
        if language != "ar":
            screenshot(page, f"admin-deliveries-{language}")
        page.goto(f"/admin/deliveries/{dead_delivery}")
        assert_accessible(page)
        page.goto("/admin/templates?channel=email")
        expect(page.locator("iframe[sandbox]")).to_have_count(1)
        assert_accessible(page)
        if language == "en":
            # A sandboxed frame is painted once it has been in view: show it first.
            page.locator("iframe.message-html").scroll_into_view_if_needed()
            expect(page.frame_locator("iframe.message-html").locator("body")).to_be_visible()
            screenshot(page, "admin-templates-en")


def test_every_channels_html_is_shown_in_a_sandboxed_frame(
    site: LiveSite, browser: Browser
) -> None:
    with visitor(browser, site, "en") as page:
        log_in(page)
        for channel in notifiers.CHANNELS:
            page.goto(f"/admin/templates?channel={channel}&language=he")
            frame = page.locator("iframe.message-html")
            expect(frame).to_have_count(1)
            expect(frame).to_have_attribute("sandbox", "")
            expect(frame).to_have_attribute("title", re.compile(".+"))


def _reloaded(page: Page, selector: str, text: str) -> bool:
    """Reload ``page`` and say whether ``selector`` now shows ``text``."""
    page.reload()
    return text in page.locator(selector).inner_text()
