"""The served feeds: Atom, RSS 2.0 and iCalendar, in Hebrew, Arabic and English.

A real app over a real database (``tests.databases``), fed by the real
pipeline from the CKAN fake (the 2017 mr.gov.il rows); the source's rows are edited between polls to
update an item and to move a deadline.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Event
from sqlmodel import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from agent import ical, subscriptions
from agent.config import build_config
from agent.feeds import FeedFormat
from agent.models import Subscription
from agent.rendering import BUILTIN_TEMPLATES, Renderer
from agent.service import Agent
from agent.web import create_app
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan
from tests.samples import alert, item, recipient

NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)
PUBLIC_URL = "https://alerts.example.org"
ISRAEL = ZoneInfo("Asia/Jerusalem")
LANGUAGES = ("he", "ar", "en")
#: Subscription names in their own language.
NAMES = {"he": "שירותים", "ar": "خدمات", "en": "services"}
#: A word of each language's calendar name (``calendar_title``).
CALENDAR_WORD = {"he": "מועדים אחרונים", "ar": "المواعيد النهائية", "en": "deadlines"}

#: mr.gov.il publication numbers of three tenders the rule "שירותי" matches.
MOVED = "598885"  # deadline 10.07.2017, no time: an all-day event
UPDATED = "598887"  # deadline 10.07.2017
TIMED = "596915"  # deadline 25.07.2017 13:00


class Source:
    """The CKAN fake, whose rows a test may replace between polls.

    Each answer is ``tests.fakes.ckan``'s (its docstring says where the shape is
    documented); only the rows change, as a register's do between two reads.
    """

    def __init__(self) -> None:
        self.rows = ckan.real_records()
        self._app = ckan.build_app(self.rows)

    def edit(self, publication: str, **columns: str) -> None:
        """Change one row's columns (by their Hebrew names), as the register would."""
        self.rows = [
            row | columns if row["מספר פרסום"] == publication else row for row in self.rows
        ]
        self._app = ckan.build_app(self.rows)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app: ASGIApp = self._app
        await app(scope, receive, send)


@dataclass
class Site:
    """The agent, its feeds' server, the source behind it and the shared clock."""

    agent: Agent
    url: str
    source: Source
    subs: dict[str, Subscription]
    clock: list[datetime]

    async def republish(self, after: timedelta = timedelta(hours=1)) -> None:
        """Poll the edited source a while later and send what matched."""
        self.clock[0] += after
        [result] = await self.agent.poll_all()
        assert result.error is None, result.error
        await self.agent.dispatch()

    async def get(
        self, sub: Subscription, fmt: FeedFormat, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """Fetch one of the subscription's feeds, by the URL the agent hands out."""
        link = self.agent.links.feed_url(sub, fmt)
        async with httpx.AsyncClient() as http:
            return await http.get(link.replace(PUBLIC_URL, self.url), headers=headers or {})


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    source = Source()
    clock = [NOW]
    with serve(source) as source_url:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(tmp_path),
                    "templates_dir": str(ROOT / "templates"),
                    "public_url": PUBLIC_URL,
                    "signing_key": "feeds-test-signing-key",
                },
                "sources": {
                    "tenders": {"kind": "ckan", "base_url": source_url, "alert_on_first_poll": True}
                },
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=lambda: clock[0]) as agent:
            subs = {}
            with Session(agent.db, expire_on_commit=False) as session:
                wanted = {language: (NAMES[language], "שירותי") for language in LANGUAGES}
                # Alerted about new items only: its calendar must still follow the source.
                wanted["new-only"] = ("new tenders only", "שירותי event:new")
                for key, (name, query) in wanted.items():
                    language = key if key in LANGUAGES else "en"
                    entry = subscriptions.SubscriptionInput.model_validate(
                        {"name": name, "query": query, "language": language}
                    )
                    subs[key] = subscriptions.save(session, entry, now=NOW)
                session.commit()
            site = Site(agent, "", source, subs, clock)
            await site.republish(after=timedelta(0))
            app = create_app(agent)
            with serve(app) as url:
                site.url = url
                yield site


def entries(response: httpx.Response) -> list[Any]:
    """The parsed entries of an Atom or RSS answer, checked well-formed."""
    assert response.status_code == 200, response.text
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    return list(feed.entries)


def events(response: httpx.Response) -> dict[str, Event]:
    """The calendar's events by UID, parsed by ``icalendar``."""
    assert response.status_code == 200, response.text
    calendar = Calendar.from_ical(response.content)
    found = {event.uid: event for event in calendar.events}
    assert len(found) == len(calendar.events), "every UID is unique"
    return found


def event_of(found: dict[str, Event], publication: str) -> Event:
    """The calendar event of the tender with this mr.gov.il publication number."""
    [event] = [e for e in found.values() if e.url.endswith(f"/{publication}")]
    return event


def ids_of(publication: str, listed: list[Any]) -> list[str]:
    """Entry ids of one tender's alerts (ids are urn:smart-agent:<source>:<key>:<version>)."""
    return [e.id for e in listed if e.link.endswith(f"/{publication}")]


@pytest.mark.parametrize("language", LANGUAGES)
async def test_atom_and_rss_list_the_same_alerts_with_item_and_version_ids(
    site: Site, language: str
) -> None:
    sub = site.subs[language]
    atom, rss = await site.get(sub, FeedFormat.ATOM), await site.get(sub, FeedFormat.RSS)
    assert atom.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert rss.headers["content-type"] == "application/rss+xml; charset=utf-8"
    in_atom, in_rss = entries(atom), entries(rss)
    assert in_atom
    assert [(e.id, e.title) for e in in_atom] == [(e.id, e.title) for e in in_rss]
    assert all(re.fullmatch(r"urn:smart-agent:tenders:[^:]+:[^:]+", e.id) for e in in_atom)
    assert ids_of(MOVED, in_atom) == [f"urn:smart-agent:tenders:{_key(MOVED)}:new"], (
        "the item's key and its version (new)"
    )
    assert b'<guid isPermaLink="false">urn:smart-agent:tenders:' in rss.content
    for parsed in (atom, rss):
        assert feedparser.parse(parsed.content).feed.language == language
    direction = "ltr" if language == "en" else "rtl"
    assert f'dir="{direction}"' in in_rss[0].summary
    assert all("שירותי" in e.title or "שירותי" in e.summary for e in in_rss)
    again = entries(await site.get(sub, FeedFormat.RSS))
    assert [e.id for e in again] == [e.id for e in in_rss], "rendered twice, the same ids"


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_calendar_has_every_matched_deadline_in_the_readers_language(
    site: Site, language: str
) -> None:
    response = await site.get(site.subs[language], FeedFormat.ICS)
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    calendar = Calendar.from_ical(response.content)
    assert CALENDAR_WORD[language] in str(calendar["X-WR-CALNAME"])
    assert NAMES[language] in calendar.calendar_name
    assert [zone.tz_name for zone in calendar.timezones] == ["Asia/Jerusalem"]
    found = events(response)
    # Every alerted item with a deadline, once.
    alerted = entries(await site.get(site.subs[language], FeedFormat.ATOM))
    label = f"<b>{site.agent.renderer.strings(language)['deadline']}:</b>"
    with_deadline = {e.link for e in alerted if label in e.summary}
    assert {e.url for e in found.values()} == with_deadline
    assert len(found) >= 6
    moved = event_of(found, MOVED)
    assert moved.start == date(2017, 7, 10), "a deadline without a time is an all-day event"
    assert moved.end == date(2017, 7, 11)
    assert moved.summary == "מתן שירותי כוח אדם זמני בעיתות חירום"
    assert f"SUMMARY;LANGUAGE={language}:".encode() in moved.to_ical()
    description = moved.description or ""
    assert "משרד האוצר · רשות המסים בישראל" in description
    assert description.endswith(f"https://mr.gov.il/ilgstorefront/he/p/{MOVED}")
    assert str(site.agent.renderer.strings(language)["publisher"]) in description
    assert "10 " in description.splitlines()[-2], "a date without a time shows no time"
    assert moved.sequence == 0
    assert moved.transparency == "TRANSPARENT"
    [alarm] = moved.alarms.times
    assert alarm.trigger == datetime(2017, 7, 9, 9, 0), "at nine the day before"
    timed = event_of(found, TIMED)
    assert timed.start == datetime(2017, 7, 25, 13, 0, tzinfo=ISRAEL)
    assert b"DTSTART;TZID=Asia/Jerusalem:20170725T130000" in timed.to_ical()
    [alarm] = timed.alarms.times
    assert alarm.trigger == datetime(2017, 7, 24, 13, 0, tzinfo=ISRAEL), "a day before"


@pytest.mark.parametrize("fmt", list(FeedFormat))
@pytest.mark.parametrize("language", LANGUAGES)
async def test_each_feed_answers_304_to_its_etag_and_to_if_modified_since(
    site: Site, language: str, fmt: FeedFormat
) -> None:
    sub = site.subs[language]
    first = await site.get(sub, fmt)
    assert first.status_code == 200
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert modified == format_datetime(NOW, usegmt=True), "the newest alert or change shown"
    assert (await site.get(sub, fmt)).headers["etag"] == etag, "the same bytes again"
    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": f'"other", W/{etag}'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": modified},
        {"If-Modified-Since": format_datetime(NOW + timedelta(days=1), usegmt=True)},
    ):
        cached = await site.get(sub, fmt, headers)
        assert cached.status_code == 304, headers
        assert cached.content == b""
        assert (cached.headers["etag"], cached.headers["last-modified"]) == (etag, modified)
    for headers in (
        {"If-Modified-Since": format_datetime(NOW - timedelta(seconds=1), usegmt=True)},
        # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
        {"If-None-Match": '"stale"', "If-Modified-Since": modified},
        {"If-Modified-Since": "yesterday"},
    ):
        assert (await site.get(sub, fmt, headers)).content == first.content, headers


@pytest.mark.parametrize("language", LANGUAGES)
async def test_an_updated_item_appears_again_with_a_new_id(site: Site, language: str) -> None:
    sub = site.subs[language]
    before = {fmt: await site.get(sub, fmt) for fmt in (FeedFormat.ATOM, FeedFormat.RSS)}
    title = "אספקת שירותי אירוח לבחינות של מועצת יועצי המס (מעודכן)"
    site.source.edit(UPDATED, **{"שם הליך": title})
    await site.republish()
    for fmt, old in before.items():
        new = await site.get(sub, fmt, {"If-None-Match": old.headers["etag"]})
        listed, earlier = entries(new), entries(old)
        assert new.headers["last-modified"] == format_datetime(site.clock[0], usegmt=True)
        assert len(listed) == len(earlier) + 1
        assert title in listed[0].title, "the newest first"
        [update, first] = ids_of(UPDATED, listed)
        assert first == f"urn:smart-agent:tenders:{_key(UPDATED)}:new"
        assert update.startswith(f"urn:smart-agent:tenders:{_key(UPDATED)}:updated%3A")
        assert {e.id for e in earlier} < {e.id for e in listed}, "older entries keep their ids"
        stale = await site.get(sub, fmt, {"If-Modified-Since": old.headers["last-modified"]})
        assert stale.status_code == 200


@pytest.mark.parametrize("key", [*LANGUAGES, "new-only"])
async def test_a_moved_deadline_moves_the_same_calendar_event(site: Site, key: str) -> None:
    sub = site.subs[key]
    old = await site.get(sub, FeedFormat.ICS)
    before = event_of(events(old), MOVED)
    site.source.edit(MOVED, **{"תאריך אחרון להגשת השגות": "20.07.2017"})
    await site.republish()
    new = await site.get(sub, FeedFormat.ICS, {"If-None-Match": old.headers["etag"]})
    found = events(new)
    after = event_of(found, MOVED)
    assert after.uid == before.uid, "the same event, moved"
    assert (after.start, after.end) == (date(2017, 7, 20), date(2017, 7, 21))
    assert after.sequence == before.sequence + 1
    assert after.stamp == after.last_modified == site.clock[0]
    assert after.stamp > before.stamp
    assert len(found) == len(events(old)), "no event added or lost"
    assert new.headers["last-modified"] == format_datetime(site.clock[0], usegmt=True)
    assert event_of(found, TIMED).to_ical() == event_of(events(old), TIMED).to_ical()


def add_subscription(site: Site, name: str, query: str, language: str) -> Subscription:
    """Save one more subscription, at the site's current time."""
    with Session(site.agent.db, expire_on_commit=False) as session:
        entry = subscriptions.SubscriptionInput.model_validate(
            {"name": name, "query": query, "language": language}
        )
        sub = subscriptions.save(session, entry, now=site.clock[0])
        session.commit()
    return sub


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_new_match_of_an_old_item_is_news_to_if_modified_since(
    site: Site, language: str
) -> None:
    site.clock[0] += timedelta(hours=1)
    late = add_subscription(site, f"late {language}", "שירותי", language)
    empty = {fmt: await site.get(late, fmt) for fmt in FeedFormat}
    assert not events(empty[FeedFormat.ICS])
    # Six days on, two tenders first seen a week ago close within three days.
    await site.republish(after=timedelta(days=6))
    for fmt, before in empty.items():
        since = {"If-Modified-Since": before.headers["last-modified"]}
        answer = await site.get(late, fmt, since)
        assert answer.status_code == 200, fmt
        assert answer.headers["last-modified"] == format_datetime(site.clock[0], usegmt=True)
    found = events(await site.get(late, FeedFormat.ICS))
    assert {event_of(found, MOVED).stamp, event_of(found, UPDATED).stamp} == {NOW}
    assert len(entries(await site.get(late, FeedFormat.RSS))) == 2


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_subscription_without_matches_has_valid_empty_feeds(
    site: Site, language: str
) -> None:
    quiet = add_subscription(site, f"quiet {language}", "צוללת", language)
    for fmt in (FeedFormat.ATOM, FeedFormat.RSS):
        assert entries(await site.get(quiet, fmt)) == []
    answer = await site.get(quiet, FeedFormat.ICS)
    assert events(answer) == {}
    assert CALENDAR_WORD[language] in Calendar.from_ical(answer.content).calendar_name
    assert answer.headers["last-modified"] == format_datetime(quiet.updated_at, usegmt=True)


async def test_unknown_feed_tokens_are_not_found(site: Site) -> None:
    async with httpx.AsyncClient() as http:
        for suffix in ("xml", "rss", "ics"):
            answer = await http.get(f"{site.url}/feeds/guess.{suffix}")
            assert answer.status_code == 404
        token = site.subs["he"].feed_token
        assert (await http.get(f"{site.url}/feeds/{token}.json")).status_code == 404


def _key(publication: str) -> str:
    """The CKAN watcher's key of an mr.gov.il tender (type/publication/number), as in an id."""
    return {
        MOVED: "office%2F598885%2F3%2F17",
        UPDATED: "office%2F598887%2F5%2F17",
    }[publication]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(st.characters(codec=None, exclude_categories=()), min_size=1))
def test_any_text_from_a_source_makes_a_well_formed_rss_feed_and_calendar(text: str) -> None:
    renderer = Renderer(BUILTIN_TEMPLATES)
    tender = item(title=text, publisher=text, description=text, url=text)
    reader = recipient("ar")
    one = alert(subject=tender)
    ET.fromstring(renderer.render_feed(reader, [one], updated_at=NOW, fmt=FeedFormat.RSS))
    dated = [ical.Dated(tender, NOW, NOW)]
    calendar = ical.render(renderer, reader, dated, updated_at=NOW, self_url="https://a.example/c")
    [event] = Calendar.from_ical(calendar).events
    assert event.summary == " ".join(tender.title.split())
    assert (event.description or "").startswith("مناقصة\n")
