"""Rendering: every template in Hebrew, Arabic and English, and Telegram's size limit."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest
from jinja2 import UndefinedError

from agent import i18n
from agent.models import Change, EventType, Kind
from agent.rendering import BUILTIN_TEMPLATES, Renderer
from agent.rules import dump_node, parse_query
from notifiers.email import EmailNotifier
from notifiers.telegram import MAX_LENGTH as TELEGRAM_MAX_LENGTH
from notifiers.telegram import plain_text as telegram_plain
from tests.conftest import NOW
from tests.fakes.telegram import visible_text
from tests.samples import (
    ARABIC_TITLE,
    DEADLINE,
    ENGLISH_TITLE,
    HEBREW_TITLE,
    alert,
    item,
    recipient,
)

FSI, PDI = "\u2068", "\u2069"

LANGUAGES = [
    pytest.param("he", "rtl", HEBREW_TITLE, "התראה חדשה", id="hebrew reads right to left"),
    pytest.param("ar", "rtl", ARABIC_TITLE, "تنبيه جديد", id="arabic reads right to left"),
    pytest.param("en", "ltr", ENGLISH_TITLE, "New alert", id="english reads left to right"),
]


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(BUILTIN_TEMPLATES, mail_domain="alerts.example.org")


def test_every_language_catalogue_has_the_same_keys(renderer: Renderer) -> None:
    keys = {lang: i18n.flat_keys(renderer.strings(lang)) for lang in i18n.LANGUAGES}
    assert keys["he"], "the Hebrew catalogue is empty"
    assert keys["ar"] == keys["he"]
    assert keys["en"] == keys["he"]


@pytest.mark.parametrize(("lang", "direction", "title", "subject"), LANGUAGES)
def test_email_is_written_in_the_readers_language_and_direction(
    renderer: Renderer, lang: str, direction: str, title: str, subject: str
) -> None:
    [out] = renderer.render("email", recipient(lang), [alert(subject=item(title))], now=NOW)
    message = out.message
    assert message.subject.startswith(subject)
    assert title in message.subject
    assert f'<html lang="{lang}" dir="{direction}">' in (message.html or "")
    assert title in (message.html or "")
    assert title in message.text
    assert "משרד הבריאות" in message.text
    assert message.language == lang
    assert EmailNotifier().build(message)["Content-Language"] == lang
    assert out.delivery_ids == (1,)


@pytest.mark.parametrize(("lang", "direction", "title", "subject"), LANGUAGES)
def test_telegram_and_feed_entries_are_written_in_the_readers_language(
    renderer: Renderer, lang: str, direction: str, title: str, subject: str
) -> None:
    label = renderer.strings(lang)["event"]["new"]
    [tg] = renderer.render("telegram", recipient(lang), [alert(subject=item(title))], now=NOW)
    assert f"<b>{label}</b>" in (tg.message.html or "")
    assert title in visible_text(tg.message.html or "")
    [rss] = renderer.render("rss", recipient(lang), [alert(subject=item(title))], now=NOW)
    assert rss.message.subject.startswith(f"{label}: ")
    assert f'dir="{direction}"' in (rss.message.html or "")


@pytest.mark.parametrize(
    ("lang", "amount", "date", "days"),
    [
        pytest.param("he", "1,250,000", "1 בדצמבר 2026 בשעה 12:00", "נותרו 8 ימים", id="hebrew"),
        pytest.param("ar", "1,250,000", "1 ديسمبر 2026", "8 أيام", id="arabic"),
        pytest.param("en", "₪1,250,000", "1 December 2026 at 12:00", "8 days left", id="english"),
    ],
)
def test_amounts_and_deadlines_are_localised_in_jerusalem_time(
    renderer: Renderer, lang: str, amount: str, date: str, days: str
) -> None:
    [out] = renderer.render("email", recipient(lang), [alert()], now=NOW)
    text = out.message.text
    assert amount in text
    assert "₪" in text
    assert date in text
    assert days in text


def test_days_left_follow_plural_rules_and_say_when_a_deadline_passed(renderer: Renderer) -> None:
    cat_he, cat_ar = renderer.strings("he"), renderer.strings("ar")
    zone = renderer.zone
    assert i18n.days_left(NOW + timedelta(days=1), NOW, "he", cat_he, zone) == "נותר יום אחד"
    assert i18n.days_left(NOW + timedelta(days=2), NOW, "he", cat_he, zone) == "נותרו יומיים"
    assert i18n.days_left(NOW + timedelta(hours=1), NOW, "he", cat_he, zone) == "נסגר היום"
    assert i18n.days_left(NOW - timedelta(hours=1), NOW, "he", cat_he, zone) == "המועד עבר"
    assert i18n.days_left(NOW + timedelta(days=11), NOW, "ar", cat_ar, zone) == "بقي 11 يومًا"


def test_markup_in_titles_is_escaped_in_every_html_template(renderer: Renderer) -> None:
    title = 'מכרז <script>alert(1)</script> & "AT&T" שירותים'
    alerts = [alert(subject=item(title))]
    [mail] = renderer.render("email", recipient(), alerts, now=NOW)
    [tg] = renderer.render("telegram", recipient(), alerts, now=NOW)
    [rss] = renderer.render("rss", recipient(), alerts, now=NOW)
    for html in (mail.message.html or "", tg.message.html or "", rss.message.html or ""):
        assert "<script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in html
    assert title in mail.message.text
    assert title in visible_text(tg.message.html or "")


def test_telegram_escapes_only_what_telegram_requires(renderer: Renderer) -> None:
    [tg] = renderer.render("telegram", recipient(), [alert(subject=item('O\'Brien "בע״מ"'))])
    html = tg.message.html or ""
    assert "&#34;" not in html
    assert "&#39;" not in html
    assert "O'Brien" in visible_text(html)


def test_latin_text_in_a_hebrew_message_is_isolated(renderer: Renderer) -> None:
    [out] = renderer.render("email", recipient(), [alert(subject=item(ENGLISH_TITLE))], now=NOW)
    assert f"{FSI}{ENGLISH_TITLE}{PDI}" in out.message.text
    assert f"{FSI}ענן ו-IT לבריאות{PDI}" in out.message.text


def test_an_update_shows_each_changed_field_before_and_after(renderer: Renderer) -> None:
    changes = {
        "deadline": Change(before="2026-11-20T10:00:00+00:00", after=DEADLINE.isoformat()),
        "amount": Change(before=1_000_000, after=1_250_000),
        "status": Change(before="פתוח", after="הוארך"),
    }
    update = alert(event=EventType.UPDATED, changes=changes)
    [out] = renderer.render("email", recipient(), [update], now=NOW)
    text = out.message.text
    assert "[עודכן]" in text
    assert "מה השתנה:" in text
    assert "מועד אחרון: ⁨20 בנובמבר 2026 בשעה 12:00⁩ ← ⁨1 בדצמבר 2026 בשעה 12:00⁩" in text
    assert "1,000,000\xa0\u200f₪⁩ ← " in text
    assert "סטטוס: ⁨פתוח⁩ ← ⁨הוארך⁩" in text


@pytest.mark.parametrize(
    ("lang", "why"),
    [
        pytest.param(
            "he",
            f"למה קיבלת את זה: המילה {FSI}מחשוב{PDI} בכותרת (בצורה {FSI}ומחשוב{PDI}); "
            f"סוג: {FSI}מכרז{PDI}\n",
            id="hebrew",
        ),
        pytest.param(
            "ar",
            f"لماذا وصلك هذا: الكلمة {FSI}מחשוב{PDI} في العنوان (بصيغة {FSI}ומחשוב{PDI})؛ "
            f"النوع: {FSI}مناقصة{PDI}\n",
            id="arabic",
        ),
        pytest.param(
            "en",
            f"Why you got this: the word {FSI}מחשוב{PDI} in the title (as {FSI}ומחשוב{PDI}); "
            f"kind: {FSI}Tender{PDI}\n",
            id="english",
        ),
    ],
)
def test_the_why_line_is_a_sentence_in_the_readers_language(
    renderer: Renderer, lang: str, why: str
) -> None:
    [mail] = renderer.render("email", recipient(lang), [alert()], now=NOW)
    [tg] = renderer.render("telegram", recipient(lang), [alert()], now=NOW)
    [rss] = renderer.render("rss", recipient(lang), [alert()], now=NOW)
    assert why in mail.message.text
    sentence = why.split(": ", 1)[1].rstrip()
    assert sentence in (mail.message.html or "")
    assert why.rstrip() in visible_text(tg.message.html or "")
    assert sentence in (rss.message.html or "")
    assert "kind:tender" not in mail.message.text, "rule syntax is for `deliveries why`"


def test_the_why_line_leaves_out_what_every_alert_of_the_subscription_meets(
    renderer: Renderer,
) -> None:
    tenders_only = replace(recipient("en"), rule=dump_node(parse_query("מחשוב kind:tender")))
    [out] = renderer.render("email", tenders_only, [alert()], now=NOW)
    line = f"Why you got this: the word {FSI}מחשוב{PDI} in the title (as {FSI}ומחשוב{PDI})\n"
    assert line in out.message.text


def test_a_stored_rule_that_no_longer_loads_only_makes_the_why_line_say_more(
    renderer: Renderer,
) -> None:
    broken = replace(recipient("en"), rule={"no_such_node": []})
    [out] = renderer.render("email", broken, [alert()], now=NOW)
    assert f"; kind: {FSI}Tender{PDI}\n" in out.message.text


def test_hostile_values_in_the_why_line_are_escaped_in_every_html_template(
    renderer: Renderer,
) -> None:
    reasons = [
        {"clause": "tag:<b>", "field": "tag", "matched": "<b>"},
        {"clause": 'publisher:"<script>"', "field": "publisher", "matched": "<script>x</script>"},
    ]
    alerts = [alert(reasons=reasons)]
    [mail] = renderer.render("email", recipient("en"), alerts, now=NOW)
    [tg] = renderer.render("telegram", recipient("en"), alerts, now=NOW)
    [rss] = renderer.render("rss", recipient("en"), alerts, now=NOW)
    for html in (mail.message.html or "", tg.message.html or "", rss.message.html or ""):
        assert f"tag: {FSI}&lt;b&gt;{PDI}" in html
        assert f"publisher: {FSI}&lt;script&gt;x&lt;/script&gt;{PDI}" in html
        assert "<script>" not in html
    assert f"tag: {FSI}<b>{PDI}" in mail.message.text
    assert f"tag: {FSI}<b>{PDI}" in visible_text(tg.message.html or "")


def test_an_alert_without_reasons_has_no_why_line(renderer: Renderer) -> None:
    [out] = renderer.render("email", recipient(), [alert(reasons=[])], now=NOW)
    assert "למה קיבלת" not in out.message.text


def test_a_digest_email_carries_every_delivery_with_a_stable_message_id(
    renderer: Renderer,
) -> None:
    alerts = [alert(1), alert(2, subject=item(ARABIC_TITLE)), alert(3, subject=item(ENGLISH_TITLE))]
    [out] = renderer.render("email", recipient(), alerts, now=NOW)
    [again] = renderer.render("email", recipient(), alerts, now=NOW)
    [other] = renderer.render("email", recipient(), alerts[:2], now=NOW)
    assert out.message.subject == "3 עדכונים חדשים — ⁨ענן ו-IT לבריאות⁩"
    assert out.delivery_ids == (1, 2, 3)
    assert all(title in out.message.text for title in (HEBREW_TITLE, ARABIC_TITLE, ENGLISH_TITLE))
    assert out.message.message_id == again.message.message_id
    assert re.fullmatch(r"<sa-[0-9a-f]{32}@alerts\.example\.org>", out.message.message_id or "")
    assert other.message.message_id != out.message.message_id


def test_email_headers_offer_one_click_unsubscribe(renderer: Renderer) -> None:
    [out] = renderer.render("email", recipient(), [alert()], now=NOW)
    headers = EmailNotifier().build(out.message)
    assert headers["List-Unsubscribe"] == "<https://alerts.example.org/unsubscribe/7.abc>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["Auto-Submitted"] == "auto-generated"
    assert "https://alerts.example.org/unsubscribe/7.abc" in (out.message.html or "")
    assert "https://alerts.example.org/feeds/tok123.xml" in out.message.text


def test_email_without_an_unsubscribe_link_has_no_unsubscribe_headers(renderer: Renderer) -> None:
    [out] = renderer.render("email", recipient(unsubscribe=False), [alert()], now=NOW)
    headers = EmailNotifier().build(out.message)
    assert "List-Unsubscribe" not in headers
    assert "List-Unsubscribe-Post" not in headers


def test_email_html_has_its_css_inlined(renderer: Renderer) -> None:
    [out] = renderer.render("email", recipient(), [alert()], now=NOW)
    html = out.message.html or ""
    assert "<style>" not in html
    assert 'class="item" style="' in html


def test_a_few_alerts_go_to_telegram_as_one_message_each(renderer: Renderer) -> None:
    alerts = [alert(n, subject=item(f"{HEBREW_TITLE} {n}")) for n in (1, 2, 3)]
    outs = renderer.render("telegram", recipient(), alerts, now=NOW)
    assert [o.delivery_ids for o in outs] == [(1,), (2,), (3,)]
    assert all(o.message.subject == "" for o in outs)


def test_a_long_telegram_digest_splits_between_items_within_the_limit(renderer: Renderer) -> None:
    titles = [f"{HEBREW_TITLE} מס׳ {n}" for n in range(60)]
    alerts = [
        alert(n, subject=item(title, description="תיאור ארוך " * 40, key=f"t-{n}"))
        for n, title in enumerate(titles)
    ]
    outs = renderer.render("telegram", recipient(), alerts, now=NOW)
    assert len(outs) > 1
    assert [i for o in outs for i in o.delivery_ids] == list(range(60))
    for out in outs:
        html = out.message.html or ""
        assert len(html) <= TELEGRAM_MAX_LENGTH
        shown = visible_text(html)  # raises if a tag were cut or left open
        for n in out.delivery_ids:
            assert titles[n] in shown, "an item was split across messages"


def test_one_oversized_item_is_shortened_with_its_tags_still_closed(renderer: Renderer) -> None:
    # A source that puts a whole document in the title (descriptions are already capped).
    huge = item(f"{HEBREW_TITLE} " + "שירותי ענן & <תחזוקה> " * 600)
    [out] = renderer.render("telegram", recipient(), [alert(subject=huge)], now=NOW)
    html = out.message.html or ""
    assert len(html) <= TELEGRAM_MAX_LENGTH
    shown = visible_text(html)
    assert HEBREW_TITLE in shown
    assert f"…{PDI}" in shown, "the title is cut, marked, and its isolate closed"
    assert len(html) > TELEGRAM_MAX_LENGTH - 200, "shortened far more than needed"


def test_telegram_plain_text_keeps_links_readable() -> None:
    html = '<b>חדש</b> <a href="https://x.example/?a=1&amp;b=2">מכרז &lt;1&gt;</a>'
    assert telegram_plain(html) == "חדש מכרז <1> (https://x.example/?a=1&b=2)"


def test_the_feed_is_atom_with_stable_entry_ids_in_the_readers_language(
    renderer: Renderer,
) -> None:
    alerts = [alert(2, subject=item(ARABIC_TITLE, key="b")), alert(1)]
    body = renderer.render_feed(recipient("he"), alerts, updated_at=NOW)
    again = renderer.render_feed(recipient("he"), alerts, updated_at=NOW)
    feed = feedparser.parse(body)
    assert not feed.bozo
    assert feed.feed.title == "Smart Agent — ענן ו-IT לבריאות"
    assert feed.feed.language == "he"
    assert [e.title for e in feed.entries] == [f"חדש: {ARABIC_TITLE}", f"חדש: {HEBREW_TITLE}"]
    assert feed.entries[1].link == item().url
    assert 'dir="rtl"' in feed.entries[1].content[0].value
    assert [e.id for e in feed.entries] == [e.id for e in feedparser.parse(again).entries]
    assert len({e.id for e in feed.entries}) == 2


def test_an_empty_feed_is_still_valid(renderer: Renderer) -> None:
    feed = feedparser.parse(renderer.render_feed(recipient("en"), [], updated_at=NOW))
    assert not feed.bozo
    assert feed.entries == []


def test_an_admin_override_replaces_one_template_for_one_language(tmp_path: Path) -> None:
    (tmp_path / "telegram" / "en").mkdir(parents=True)
    (tmp_path / "telegram" / "en" / "body.html").write_text(
        "<b>{{ items|length }} custom</b>", encoding="utf-8"
    )
    (tmp_path / "i18n").mkdir()
    (tmp_path / "i18n" / "he.toml").write_text('[event]\nnew = "חדש!"\n', encoding="utf-8")
    custom = Renderer(tmp_path)
    [en] = custom.render("telegram", recipient("en"), [alert()], now=NOW)
    [he] = custom.render("telegram", recipient("he"), [alert()], now=NOW)
    assert en.message.html == "<b>1 custom</b>"
    assert "<b>חדש!</b>" in (he.message.html or "")
    assert custom.strings("he")["event"]["updated"] == "עודכן", "built-in keys still fill in"


def test_a_template_using_an_unknown_name_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "subject.txt").write_text("{{ no_such_name }}", encoding="utf-8")
    with pytest.raises(UndefinedError):
        Renderer(tmp_path).render("email", recipient(), [alert()], now=NOW)


def test_an_unknown_language_falls_back_to_hebrew_and_other_kinds_are_labelled(
    renderer: Renderer,
) -> None:
    call = item(kind=Kind.CALL_FOR_BIDS, amount=None, deadline=None, publisher=None)
    [out] = renderer.render("email", recipient("fr"), [alert(subject=call)], now=NOW)
    assert out.message.language == "he"
    assert "קול קורא" in out.message.text
    assert "סכום" not in out.message.text


def test_an_unknown_channel_is_a_programming_error(renderer: Renderer) -> None:
    with pytest.raises(KeyError, match="sms"):
        renderer.render("sms", recipient(), [alert()], now=NOW)
    assert renderer.render("email", recipient(), [], now=NOW) == []
