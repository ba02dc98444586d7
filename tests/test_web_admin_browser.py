"""The admin console in a real browser: log in, the charts, turning a source off and on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

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
from tests.service import Counted, wait_until

pytestmark = needs_chromium

SOURCE = "datagov-tenders"
SUBSCRIBER = "ngo@example.org"
#: The console's menu, and its link to the sources page, in each language.
CONSOLE = {"he": "מסוף הניהול", "ar": "وحدة الإدارة", "en": "Admin console"}
SOURCES_LINK = {"he": "מקורות", "ar": "المصادر", "en": "Sources"}


def recent(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of recorded rows under new numbers, published last week with deadlines ahead.

    Same shape as the recorded rows; only the publication number and the dates move, so
    the service sees new tenders of today's kind.
    """
    return [
        {
            **row,
            "מספר פרסום": "9" + row["מספר פרסום"],
            "תאריך פרסום": "24.11.2026",
            "תאריך אחרון להגשת השגות": "31.12.2026",
        }
        for row in records
    ]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    with live_site(tmp_path_factory.mktemp("admin")) as running:
        # A subscriber, then three new tenders: the dashboard has alerts sent to chart.
        running.cli(
            "subscriptions", "add", "ministries", "--query", "publisher:משרד",
            "--channel", "email", "--email", SUBSCRIBER,
        )  # fmt: skip
        running.source.app = ckan.build_app(
            [*ckan.real_records(), *recent(ckan.real_records()[:3])]
        )
        running.mail_to(SUBSCRIBER, 1, timeout=60)  # one message, three alerts
        yield running


def count_requests(site: LiveSite) -> Counted:
    """Count the requests the CKAN fake gets from now on."""
    counted = Counted(site.source.app)
    site.source.app = counted
    return counted


def source_action(page: Page, verb: str) -> None:
    page.locator(f"form[action='/admin/sources/{SOURCE}/{verb}'] button").click()
    page.wait_for_load_state()


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_login_page_is_accessible_also_with_its_error(
    site: LiveSite, browser: Browser, language: str
) -> None:
    with visitor(browser, site, language) as page:
        page.goto("/login")
        assert page.get_attribute("html", "lang") == language
        assert_accessible(page)
        if language != "ar":
            screenshot(page, f"login-{language}")
        log_in(page, password="not the password at all")
        error = page.get_by_role("alert")
        expect(error).to_be_visible()
        assert page.locator("#login-email").get_attribute("aria-describedby") == "login-error"
        assert_accessible(page)


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_admin_logs_in_and_sees_the_dashboard_with_its_charts(
    site: LiveSite, browser: Browser, language: str
) -> None:
    with visitor(browser, site, language) as page:
        log_in(page)
        assert page.url == f"{site.url}/admin"
        expect(page.locator("h1")).to_have_count(1)
        # Items per day for the source, alerts per day by e-mail: a picture and a table each.
        charts = page.locator("figure.chart-figure")
        expect(charts).to_have_count(2)
        for index in range(2):
            chart = charts.nth(index)
            expect(chart.locator("svg rect")).to_have_count(30)
            expect(chart.locator("table tbody tr")).to_have_count(30)
        assert_accessible(page)
        if language != "ar":
            screenshot(page, f"admin-{language}")
        menu = page.get_by_role("navigation", name=CONSOLE[language])
        menu.get_by_role("link", name=SOURCES_LINK[language], exact=True).click()
        assert page.url == f"{site.url}/admin/sources"
        expect(page.locator(f"#source-{SOURCE}")).to_be_visible()
        assert_accessible(page)
        if language != "ar":
            screenshot(page, f"admin-sources-{language}")


def test_an_admin_disables_a_source_enables_it_and_polls_it_now(
    site: LiveSite, browser: Browser
) -> None:
    with visitor(browser, site, "en") as page:
        log_in(page)
        page.goto("/admin/sources")
        counted = count_requests(site)
        wait_until(lambda: counted.total > 0, 30, "a scheduled poll")

        source_action(page, "disable")
        expect(page.get_by_role("status")).to_contain_text("is disabled")
        row = page.locator(f"#source-{SOURCE}")
        expect(row).to_contain_text("Disabled by")
        assert_accessible(page)
        health = page.request.get("/health").json()
        assert health["sources"][0]["status"] == "disabled"
        page.wait_for_timeout(1500)  # a poll already under way when it was disabled ends
        before = counted.total
        page.wait_for_timeout(3000)  # three intervals of the source's schedule
        assert counted.total == before, "a disabled source gets no more polls"
        expect(row.locator("form[action$='/poll']")).to_have_count(0)

        source_action(page, "enable")
        expect(page.get_by_role("status")).to_contain_text("is enabled")
        wait_until(lambda: counted.total > before, 30, "polls again once enabled")

        source_action(page, "poll")
        expect(page.get_by_role("status")).to_contain_text(f"Polling \u2068{SOURCE}\u2069 now")
        page.reload()
        expect(row).to_contain_text("Working")
