"""Cadences, quiet hours and digests: when alerts go out, and how a digest reads.

A digest is checked section by section in Hebrew, Arabic and English, and then
through the real dispatcher: a daily subscription gets one sectioned e-mail at
its hour on a real SMTP server, nothing before, and nothing when there is
nothing to say; a team gets Telegram at once and the same alerts by e-mail daily.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session

from agent import subscriptions
from agent.config import build_config
from agent.digest import Section, merge, sections
from agent.models import Change, EventType, Kind
from agent.rendering import BUILTIN_TEMPLATES, Renderer
from agent.schedule import Cadence, Schedule, parse_quiet_hours
from agent.service import Agent
from tests import databases
from tests.conftest import NOW, ROOT, serve
from tests.fakes import ckan, telegram
from tests.fakes.smtp import Mailbox, smtp_in_thread
from tests.samples import alert, item, recipient

JERUSALEM = ZoneInfo("Asia/Jerusalem")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in Jerusalem in late November 2026 (UTC+2), as aware UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=JERUSALEM).astimezone(UTC)


@pytest.mark.parametrize(
    ("cadence", "quiet", "now", "due"),
    [
        pytest.param(Cadence.IMMEDIATE, None, local(23, 23), local(23, 23), id="immediate"),
        pytest.param(Cadence.IMMEDIATE, "22-07", local(23, 23), local(24, 7), id="quiet night"),
        pytest.param(Cadence.IMMEDIATE, "22-07", local(24, 3), local(24, 7), id="after midnight"),
        pytest.param(Cadence.IMMEDIATE, "22-07", local(24, 7), local(24, 7), id="quiet is over"),
        pytest.param(Cadence.IMMEDIATE, "13:30-14", local(24, 13, 45), local(24, 14), id="lunch"),
        pytest.param(Cadence.DAILY, "22-07", local(23, 23), local(24, 8), id="daily at eight"),
        pytest.param(Cadence.WEEKLY, None, local(23, 9), local(29, 8), id="weekly on sunday"),
    ],
)
def test_when_an_alert_goes_out(
    cadence: Cadence, quiet: str | None, now: datetime, due: datetime
) -> None:
    window = parse_quiet_hours(quiet) if quiet else None
    assert Schedule(cadence, JERUSALEM, 8, window).due(now) == due


def test_a_digest_hour_is_the_subscribers_own() -> None:
    london = Schedule(Cadence.DAILY, ZoneInfo("Europe/London"), 7)
    assert london.due(local(23, 10)) == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["22", "25-07", "22-22", "evening"])
def test_bad_quiet_hours_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="quiet hours"):
        parse_quiet_hours(bad)


def test_an_item_that_changed_several_times_appears_once_in_its_latest_state() -> None:
    new = alert(1, subject=item("גרסה 1"))
    later = alert(2, subject=item("גרסה 2", key=new.event.item.key), event=EventType.UPDATED)
    [folded] = merge([new, later])
    assert folded.delivery_ids == (1, 2)
    assert (folded.alert.event.type, folded.alert.event.item.title) == (EventType.NEW, "גרסה 2")

    first = alert(3, event=EventType.UPDATED, changes={"amount": Change(before=1, after=2)})
    second = alert(4, event=EventType.UPDATED, changes={"amount": Change(before=2, after=3)})
    [both] = merge([first, second])
    assert both.alert.event.changes == {"amount": Change(before=1, after=3)}


def _mixed() -> list[Any]:
    """One alert for every section, some published earlier than others."""
    far = NOW + timedelta(days=30)
    return [
        alert(1, subject=item("מכרז ישן", kind=Kind.TENDER, deadline=far, published_at=NOW)),
        alert(2, subject=item("מכרז חדש", deadline=far, published_at=NOW + timedelta(hours=1))),
        alert(3, subject=item("פטור", kind=Kind.EXEMPTION, deadline=None)),
        alert(4, subject=item("קול קורא", kind=Kind.CALL_FOR_BIDS, deadline=far)),
        alert(5, subject=item("מבחן תמיכה", kind=Kind.SUPPORT_CRITERIA, deadline=None)),
        alert(6, subject=item("העברה", kind=Kind.BUDGET_CHANGE, deadline=None)),
        alert(7, subject=item("נסגר בקרוב", deadline=NOW + timedelta(days=2))),
        alert(8, subject=item("עודכן", deadline=far), event=EventType.UPDATED),
    ]


def test_sections_come_in_budget_keys_order_newest_first() -> None:
    found = sections(_mixed(), NOW)
    assert [section for section, _ in found] == [*list(Section)[:6], Section.UPDATES]
    tenders = dict(found)[Section.TENDERS]
    assert [a.event.item.title for a in tenders] == ["מכרז חדש", "מכרז ישן"]


TITLES = {
    "he": ["נסגרים השבוע", "מכרזים חדשים", "פטורים ממכרז חדשים", "קולות קוראים חדשים",
           "מבחני תמיכה חדשים", "העברות תקציביות", "עדכונים"],
    "ar": ["تُغلق هذا الأسبوع", "مناقصات جديدة", "إعفاءات من المناقصة جديدة",
           "دعوات جديدة لتقديم المقترحات", "معايير دعم جديدة", "تحويلات في الميزانية", "تحديثات"],
    "en": ["Closing this week", "New tenders", "New tender exemptions", "New calls for proposals",
           "New support criteria", "Budget changes", "Updates"],
}  # fmt: skip
COUNTS = {
    "he": ("פריט אחד", "שני פריטים"),
    "ar": ("بند واحد", "بندان"),
    "en": ("1 item", "2 items"),
}


@pytest.mark.parametrize("lang", ["he", "ar", "en"])
def test_a_daily_digest_reads_section_by_section(lang: str) -> None:
    renderer = Renderer(BUILTIN_TEMPLATES, mail_domain="alerts.example.org")
    who = recipient(lang)
    digest = replace(who, digest=True)
    [mail] = renderer.render("email", digest, _mixed(), now=NOW)
    text = mail.message.text
    headings = re.findall(r"^== (.+) \((.+)\) ==$", text, flags=re.MULTILINE)
    assert [title for title, _ in headings] == TITLES[lang]
    one, two = COUNTS[lang]
    assert [count for _, count in headings] == [one, two, one, one, one, one, one]
    assert sorted(mail.delivery_ids) == list(range(1, 9))
    html = mail.message.html or ""
    assert all(f"{title} <span" in html for title in TITLES[lang])


@dataclass
class World:
    """An agent with a CKAN source, a real SMTP server and the Telegram fake."""

    agent: Agent
    mail: Mailbox
    bot: Any
    clock: list[datetime]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    token = "42:digest-test"
    bot = telegram.build_app(token)
    clock = [local(23, 10)]
    with serve(ckan.build_app()) as source, serve(bot) as bot_url, smtp_in_thread() as mail:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(tmp_path),
                    "templates_dir": str(ROOT / "templates"),
                    "hourly_cap": 5,
                },
                "notifiers": {
                    "email": {"host": "127.0.0.1", "port": mail.port},
                    "telegram": {"token": token, "base_url": f"{bot_url}/bot"},
                },
                "sources": {
                    "tenders": {"kind": "ckan", "base_url": source, "alert_on_first_poll": True}
                },
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=lambda: clock[0]) as agent:
            yield World(agent, mail, bot, clock)


def _subscribe(world: World, **fields: Any) -> None:
    with Session(world.agent.db) as session:
        entry = subscriptions.SubscriptionInput.model_validate(
            {"name": "team", "kinds": ["tender", "exemption"], "language": "he", **fields}
        )
        subscriptions.save(session, entry, now=world.clock[0])
        session.commit()


async def test_a_daily_subscription_gets_one_digest_at_its_hour_and_nothing_else(
    world: World,
) -> None:
    _subscribe(world, channels=["email"], email="team@ngo.example", cadence="daily")
    await world.agent.poll_all()
    assert (await world.agent.dispatch()).sent == 0, "not before eight"
    world.clock[0] = local(24, 8, 1)
    result = await world.agent.dispatch()
    [mail] = world.mail.messages
    assert result.sent > 1
    body = mail.get_body(("plain",))
    assert body is not None
    assert "== מכרזים חדשים (" in body.get_content()
    assert "== פטורים ממכרז חדשים (" in body.get_content()
    world.clock[0] = local(25, 8, 1)
    await world.agent.poll_all()
    assert (await world.agent.dispatch()).sent == 0
    assert len(world.mail.messages) == 1, "nothing to say, nothing sent"


async def test_a_team_gets_telegram_at_once_and_the_same_alerts_daily_by_email(
    world: World,
) -> None:
    _subscribe(
        world,
        channels=["email", "telegram"],
        email="team@ngo.example",
        telegram_chat_id="-1001234567890",
        cadence="daily",
        cadences={"telegram": "immediate"},
    )
    await world.agent.poll_all()
    await world.agent.dispatch()
    assert world.bot.state.sent
    assert not world.mail.messages
    world.clock[0] = local(24, 8, 1)
    await world.agent.dispatch()
    assert len(world.mail.messages) == 1


async def test_quiet_hours_hold_immediate_alerts_until_morning(world: World) -> None:
    world.clock[0] = local(23, 23)
    _subscribe(world, channels=["email"], email="team@ngo.example", quiet_hours="22-07")
    await world.agent.poll_all()
    assert (await world.agent.dispatch()).sent == 0
    world.clock[0] = local(24, 7)
    assert (await world.agent.dispatch()).sent > 0
    assert len(world.mail.messages) == 1


async def test_alerts_over_the_hourly_cap_roll_into_the_next_digest_saying_so(
    world: World,
) -> None:
    _subscribe(world, channels=["email"], email="team@ngo.example")
    await world.agent.poll_all()
    first = await world.agent.dispatch()
    assert first.sent == 5, "the cap, not one more"
    [now_mail] = world.mail.messages
    world.clock[0] = local(23, 12)  # an hour later: still waiting for the digest
    assert (await world.agent.dispatch()).sent == 0
    world.clock[0] = local(24, 8, 1)
    later = await world.agent.dispatch()
    assert later.sent > 0
    [_, digest] = world.mail.messages
    body = digest.get_body(("plain",))
    assert body is not None
    assert f"נשמרו לסיכום הזה: {later.sent}" in body.get_content()
    assert "== מכרזים חדשים (" in body.get_content()
    assert now_mail["Message-ID"] != digest["Message-ID"]
    with Session(world.agent.db) as session:
        from sqlmodel import select

        from agent.models import Delivery

        statuses = {d.status for d in session.exec(select(Delivery)).all()}
    assert statuses == {"sent"}, "nothing lost, nothing left behind"
