"""Organisations in a real browser: an NGO's owner, editor and viewer share a subscription.

The admin creates the organisation with its owner; the owner adds an editor
and a viewer (logins made with ``smart-agent admin create-user --member``);
the editor creates a shared subscription for the team's list address and
edits its rule; the viewer sees it without edit controls; the log shows both
changes with who made them and when. The accessibility tests use what the
flow made, so they run after it (pytest keeps the file's order).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import (
    ADMIN_EMAIL,
    LANGUAGES,
    LiveSite,
    assert_accessible,
    live_site,
    log_in,
    needs_chromium,
    screenshot,
    visitor,
)
from tests.fakes import telegram
from tests.fakes.telegram_updates import group_message
from tests.service import assert_clean, user_env, wait_until

pytestmark = needs_chromium

PASSWORD = "members have long passwords"
OWNER, EDITOR, VIEWER = (f"{who}@welfare-ngo.example" for who in ("owner", "editor", "viewer"))
TEAM_LIST = "welfare-team@lists.welfare-ngo.example"
SLUG = "welfare-ngo"
#: The team's Telegram group (a supergroup id), connected through the bot's deep link.
GROUP = -1001234567890


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    with live_site(tmp_path_factory.mktemp("orgs")) as running:
        for email in (OWNER, EDITOR, VIEWER):
            create_member(running.folder, email)
        yield running


def create_member(folder: Path, email: str) -> None:
    """``smart-agent admin create-user EMAIL --member``, the password typed twice."""
    result = subprocess.run(
        [sys.executable, "-m", "agent", "admin", "create-user", email, "--member"],
        cwd=folder,
        env=user_env(),
        input=f"{PASSWORD}\n{PASSWORD}\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(member)" in result.stdout


def add_member(page: Page, email: str, role: str) -> None:
    page.fill("#member-email", email)
    page.select_option("#member-role", role)
    page.click("form[action$='/members'] button[type=submit]")
    expect(page.locator("table th[scope=row]", has_text=email)).to_be_visible()


def test_an_ngo_shares_a_subscription_and_its_log_says_who_changed_it(
    site: LiveSite, browser: Browser
) -> None:
    with visitor(browser, site, "he") as page:
        log_in(page)
        page.goto("/orgs")
        page.fill("#org-name", "עמותת רווחה")
        page.fill("#org-slug", SLUG)
        page.fill("#org-owner", OWNER)
        page.click("form[action='/orgs'] button[type=submit]")
        expect(page).to_have_url(re.compile(f"/orgs/{SLUG}$"))
        expect(page.locator("h1")).to_have_text("עמותת רווחה")

    with visitor(browser, site, "he") as page:
        log_in(page, OWNER, PASSWORD)
        expect(page).to_have_url(re.compile("/orgs$"))
        page.get_by_role("link", name="עמותת רווחה").click()
        add_member(page, EDITOR, "editor")
        add_member(page, VIEWER, "viewer")

    with visitor(browser, site, "he") as page:
        log_in(page, EDITOR, PASSWORD)
        page.goto(f"/orgs/{SLUG}")
        page.get_by_role("link", name="מינוי משותף חדש").click()
        page.fill("#sub-name", "קולות קוראים – צוות הרווחה")
        page.fill("#query", "רווחה")
        page.check("input[name=channels][value=email]")
        page.fill("#sub-email", TEAM_LIST)
        page.select_option("#sub-cadence", "daily")
        page.click("form[action$='/subscriptions/new'] button[type=submit]")
        expect(page.locator("main")).to_contain_text(TEAM_LIST)
        page.get_by_role("link", name=re.compile("^עריכה")).click()
        page.fill("#query", "רווחה OR נוער")
        page.click("main form[method=post] button[type=submit] >> nth=0")
        expect(page.locator(".org-sub code")).to_have_text("רווחה OR נוער")
        connect_a_group(site, page)

    with visitor(browser, site, "he") as page:
        log_in(page, VIEWER, PASSWORD)
        page.goto(f"/orgs/{SLUG}")
        card = page.locator(".org-sub")
        expect(card).to_contain_text("קולות קוראים – צוות הרווחה")
        expect(card).to_contain_text(TEAM_LIST)
        expect(card).to_contain_text(str(GROUP))
        # No edit controls: the only form left on the page is the log-out button.
        expect(page.locator("main form")).to_have_count(0)
        expect(page.get_by_role("link", name=re.compile("^עריכה"))).to_have_count(0)
        expect(page.get_by_role("link", name="מינוי משותף חדש")).to_have_count(0)
        page.get_by_role("link", name="היומן המלא").click()
        rows = page.locator("tbody tr")
        expect(rows.nth(0)).to_contain_text("ערך/ה את המינוי")
        expect(rows.nth(0)).to_contain_text(EDITOR)
        expect(rows.nth(0)).to_contain_text("רווחה OR נוער")
        expect(rows.nth(1)).to_contain_text("יצר/ה את המינוי")
        expect(rows.nth(1)).to_contain_text(EDITOR)
        for row in (rows.nth(0), rows.nth(1)):
            expect(row.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-"))
            expect(row.locator("time")).to_contain_text("בשעה")
        expect(page.locator("tbody")).to_contain_text(
            ADMIN_EMAIL
        )  # the first owner, added by the admin
        screenshot(page, "org-log-he")
    assert_clean(site.log())


def connect_a_group(site: LiveSite, page: Page) -> None:
    """The editor's link adds the bot to the team's group, which then says ``/start <token>``."""
    link = page.get_by_role("link", name=re.compile("חיבור קבוצה")).get_attribute("href")
    assert link is not None
    assert link.startswith("https://t.me/smart_agent_test_bot?startgroup=")
    telegram.push(site.bot, group_message(GROUP, f"/start {link.split('=', 1)[1]}"))
    wait_until(lambda: bool(site.telegram_texts(str(GROUP))), 30, "the bot's answer in the group")
    page.reload()
    expect(page.locator(".org-sub")).to_contain_text(str(GROUP))


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_organisation_pages_are_accessible(
    site: LiveSite, browser: Browser, language: str
) -> None:
    with visitor(browser, site, language) as page:
        log_in(page, OWNER, PASSWORD)
        for path in ("/orgs", f"/orgs/{SLUG}", f"/orgs/{SLUG}/log"):
            page.goto(path)
            assert_accessible(page)
            if language in ("he", "en") and path == f"/orgs/{SLUG}":
                screenshot(page, f"orgs-{language}")
        page.goto(f"/orgs/{SLUG}/subscriptions/new")
        assert_accessible(page)
        page.fill("#query", '"unclosed')
        page.fill("#sub-email", "not an address")
        page.check("input[name=channels][value=email]")
        page.click("form[action$='/subscriptions/new'] button[type=submit]")
        expect(page.locator("[aria-invalid=true]")).to_have_count(3)
        assert_accessible(page)
        page.goto(f"/orgs/{SLUG}")
        page.locator(".org-sub a", has_text=re.compile(".")).first.click()
        expect(page.locator("#sub-name")).not_to_have_value("")
        assert_accessible(page)
