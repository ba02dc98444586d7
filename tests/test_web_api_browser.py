"""The API's docs page in a real browser (axe in he, ar and en); the API of the real ``serve``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser

from tests.browser import (
    LANGUAGES,
    LiveSite,
    assert_accessible,
    live_site,
    needs_chromium,
    screenshot,
    visitor,
)

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    with live_site(tmp_path_factory.mktemp("api")) as running:
        yield running


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_api_docs_page_is_accessible(site: LiveSite, browser: Browser, language: str) -> None:
    with visitor(browser, site, language) as page:
        answer = page.goto("/api/docs")
        assert answer is not None
        assert answer.status == 200
        assert page.get_attribute("html", "lang") == language
        assert page.locator("h1").count() == 1
        assert page.locator("table tbody tr").count() == 16
        assert_accessible(page)
        if language in ("he", "en"):
            screenshot(page, f"api-docs-{language}")


def test_the_footer_link_leads_to_the_docs_and_the_document(
    site: LiveSite, browser: Browser
) -> None:
    with visitor(browser, site, "en") as page:
        page.goto("/api/docs")
        page.get_by_role("link", name="/api/openapi.json").click()
        assert '"openapi":"3.1.0"' in page.content().replace(" ", "")


def test_a_key_made_on_the_command_line_opens_the_admin_api(site: LiveSite) -> None:
    key = site.cli("admin", "create-api-key", "reports").strip()
    assert key.startswith("sa_")
    auth = {"Authorization": f"Bearer {key}"}
    sources = httpx.get(f"{site.url}/api/v1/sources").json()
    assert [s["name"] for s in sources["sources"]] == ["datagov-tenders"]
    listed = httpx.get(f"{site.url}/api/v1/admin/subscriptions", headers=auth)
    assert listed.status_code == 200
    assert httpx.get(f"{site.url}/api/v1/admin/subscriptions").status_code == 401
    polled = httpx.post(f"{site.url}/api/v1/admin/sources/datagov-tenders/poll", headers=auth)
    assert polled.status_code == 202
