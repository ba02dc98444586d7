"""The console's template previews over HTTP: every channel in every language, with real items."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, select

import notifiers
from agent import i18n, preview
from agent.models import StoredItem
from tests.test_web_admin_subscriptions import ADMIN, MEMBER, Console, console


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Console]:
    async with console(tmp_path) as running:
        yield running


def stored(site: Console) -> list[StoredItem]:
    """The stored items, newest first, as the page offers them."""
    with site.session() as session:
        query = select(StoredItem).order_by(col(StoredItem.changed_at).desc(), col(StoredItem.id))
        return list(session.exec(query))


def test_the_page_is_for_admins_only(site: Console) -> None:
    anonymous = site.client(None).get("/admin/templates")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/admin/templates"
    assert site.client(MEMBER).get("/admin/templates").status_code == 403


@pytest.mark.parametrize("language", i18n.LANGUAGES)
@pytest.mark.parametrize("channel", list(notifiers.CHANNELS))
def test_every_channel_renders_a_stored_item_in_every_language(
    site: Console, channel: str, language: str
) -> None:
    newest = stored(site)[0]
    item = newest.to_item()
    answer = site.client().get(f"/admin/templates?channel={channel}&language={language}")
    assert answer.status_code == 200
    page = answer.text
    assert re.search(rf'<option value="{channel}" selected>', page)
    assert re.search(rf'<option value="{newest.id}" dir="auto" selected>', page)
    expected = [o.message for o in preview.preview(site.agent.renderer, channel, language, item)]
    assert expected
    shown = html.unescape(page)
    for message in expected:
        assert message.subject in shown
        assert message.text.strip() in shown
    # the HTML is shown only inside a sandboxed frame, never in the page itself
    frames = [html.unescape(doc) for doc in re.findall(r'<iframe [^>]*srcdoc="([^"]*)"', page)]
    assert frames == [message.html for message in expected if message.html]
    assert all('<iframe class="message-html" sandbox srcdoc=' in page for _ in frames)
    assert item.title in shown


def test_another_stored_item_can_be_chosen_and_an_unknown_one_is_404(site: Console) -> None:
    older = stored(site)[-1]
    page = site.client().get(f"/admin/templates?channel=email&language=he&item={older.id}").text
    assert re.search(rf'<option value="{older.id}" dir="auto" selected>', page)
    assert older.to_item().title in html.unescape(page)
    assert site.client().get("/admin/templates?item=99999").status_code == 404


def test_the_page_speaks_the_admins_language_and_previews_in_it_by_default(site: Console) -> None:
    page = site.client(ADMIN, "ar").get("/admin/templates").text
    assert "<h1>قوالب الرسائل</h1>" in page
    assert '<option value="ar" lang="ar" selected>' in page
