"""Every page's frame in a real browser: language and direction, the switch that sticks, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from agent.web.security import MAX_BODY_BYTES
from tests.browser import (
    LANGUAGES,
    LiveSite,
    assert_accessible,
    live_site,
    needs_chromium,
    visitor,
)

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    with live_site(tmp_path_factory.mktemp("frame")) as running:
        yield running


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_missing_page_says_so_in_the_browsers_language(
    site: LiveSite, browser: Browser, language: str
) -> None:
    with visitor(browser, site, language) as page:
        answer = page.goto("/no-such-page")
        assert answer is not None
        assert answer.status == 404
        assert page.get_attribute("html", "lang") == language
        assert_accessible(page)


def test_the_language_switch_sticks(site: LiveSite, browser: Browser) -> None:
    with visitor(browser, site, "he") as page:
        page.goto("/no-such-page")
        page.get_by_role("link", name="English").click()
        assert page.get_attribute("html", "lang") == "en"
        page.goto("/another-missing-page")
        assert page.get_attribute("html", "lang") == "en"
        assert page.get_attribute("html", "dir") == "ltr"


def test_a_form_post_without_its_csrf_token_is_refused(site: LiveSite) -> None:
    answer = httpx.post(f"{site.url}/logout", data={})
    assert answer.status_code == 403


def test_the_session_cookie_is_httponly_and_samesite(site: LiveSite, tmp_path: Path) -> None:
    answer = httpx.get(f"{site.url}/no-such-page?lang=en")
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_pages_keep_their_links_to_themselves(site: LiveSite) -> None:
    # Signed links carry their token in the path: no page may hand it to another site.
    answer = httpx.get(f"{site.url}/no-such-page")
    assert answer.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_skip_link_is_the_first_stop_and_jumps_to_the_content(
    site: LiveSite, browser: Browser
) -> None:
    with visitor(browser, site, "he") as page:
        page.goto("/no-such-page")
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent")
        assert focused == "דילוג לתוכן הראשי"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"


def test_a_request_body_over_the_limit_is_refused(site: LiveSite) -> None:
    big = b"x" * (MAX_BODY_BYTES + 1)
    declared = httpx.post(f"{site.url}/subscribe", content=big)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # chunked: no length declared, counted as it comes
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = httpx.post(
        f"{site.url}/subscribe",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413
