"""Subscribing without an account over HTTP: double opt-in by e-mail, Telegram's deep link, feeds.

The app runs in the test's event loop (``httpx.ASGITransport``), because it
sends the confirmation through the agent's own channels, opened in this loop:
the SMTP fake (aiosmtpd) and the Telegram Bot API fake, whose bot polls here.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select
from starlette.applications import Starlette

from agent import subscriptions
from agent.config import build_config
from agent.models import Subscription
from agent.service import Agent
from agent.web import create_app
from notifiers.base import ServiceContext, start_background, stop_background
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan, telegram
from tests.fakes.smtp import Mailbox
from tests.fakes.telegram_updates import private_message
from tests.samples import Clock
from tests.service import Switch

NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)
SITE = "https://alerts.example.org"
TOKEN = "123456:TEST-token"
#: A word no recorded tender has, and the new tenders the source publishes later have.
WORD = "ענן"


def tender(number: int, title: str) -> dict[str, Any]:
    """A new tender, shaped as the recorded rows (``ckan.real_records()``), published NOW."""
    row = dict(ckan.real_records()[0])
    row |= {"מספר פרסום": str(900000 + number), "שם הליך": title}
    row |= {"תאריך פרסום": "30.06.2017", "תאריך אחרון להגשת השגות": "30.07.2017"}
    return row


@dataclass
class World:
    agent: Agent
    web: httpx.AsyncClient
    mail: Mailbox
    bot: Starlette
    source: Switch
    clock: Clock
    published: int = 0

    async def form(self, path: str = "/subscribe") -> str:
        """Open a page with a form; return the session's CSRF token."""
        page = await self.web.get(path)
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found is not None, page.text
        return found[1]

    async def subscribe(self, **fields: str) -> httpx.Response:
        """Fill the subscribe form as a person does (the defaults, then ``fields``)."""
        data = {"query": WORD, "channel": "email", "language": "he", "cadence": "immediate"}
        data |= {"csrf_token": await self.form(), "name": "", "action": "subscribe", **fields}
        return await self.web.post("/subscribe", data=data)

    async def publish(self) -> None:
        """The source publishes one more tender with ``WORD``; the agent polls and sends."""
        self.published += 1
        added = [tender(n, f"שירותי {WORD} לעמותות, מכרז {n}") for n in range(self.published)]
        self.source.app = ckan.build_app([*ckan.real_records(), *added])
        await self.agent.poll_all()
        await self.agent.dispatch()

    def subs(self) -> list[Subscription]:
        with Session(self.agent.db) as session:
            return list(session.exec(select(Subscription).order_by(col(Subscription.id))))

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.mail.messages if address in str(m["To"])]


@pytest.fixture
async def world(tmp_path: Path, smtp_server: Mailbox) -> AsyncIterator[World]:
    source, bot, clock = Switch(ckan.build_app()), telegram.build_app(TOKEN), Clock(NOW)
    with serve(source) as source_url, serve(bot) as bot_url:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(tmp_path),
                    "templates_dir": str(ROOT / "templates"),
                    "public_url": SITE,
                    "signing_key": "web-subscribe-key",
                },
                "notifiers": {
                    "email": {"host": smtp_server.host, "port": smtp_server.port},
                    "telegram": {"token": TOKEN, "base_url": f"{bot_url}/bot"},
                },
                "sources": {"tenders": {"kind": "ckan", "base_url": source_url}},
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=clock) as agent:
            await agent.poll_all()
            context = ServiceContext(agent.db, agent.links, agent.renderer.strings, agent.clock)
            listening = start_background(agent.notifiers.values(), context)
            transport = httpx.ASGITransport(app=create_app(agent))
            try:
                async with httpx.AsyncClient(transport=transport, base_url=SITE) as web:
                    yield World(agent, web, smtp_server, bot, source, clock)
            finally:
                await stop_background(listening)


async def until(condition: Callable[[], object]) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def path_of(url: str) -> str:
    return url.removeprefix(SITE)


def link_in(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(r"https://\S+/confirm/\S+", body.get_content())
    assert found is not None
    return found[0]


async def test_the_form_is_prefilled_from_a_search_and_offers_the_configured_channels(
    world: World,
) -> None:
    page = await world.web.get("/subscribe", params={"query": "שירותי", "kinds": "tender"})
    assert page.status_code == 200
    assert 'id="query" name="query" value="שירותי"' in page.text
    assert 'value="tender" checked' in page.text
    channels = re.findall(r'type="radio" name="channel" id="channel-(\w+)"', page.text)
    assert channels == ["email", "telegram", "rss"]
    assert 'type="email" id="email" name="email"' in page.text
    assert 'autocomplete="email"' in page.text
    # The search's preview is there at once, in the live region.
    assert re.search(r'id="preview-status"[^>]*role="status"[^>]*>[^<]*\d', page.text)


@pytest.mark.parametrize("language", ["he", "ar", "en"])
async def test_errors_are_shown_at_their_fields_and_nothing_is_saved(
    world: World, language: str
) -> None:
    await world.web.get(f"/subscribe?lang={language}")
    answer = await world.subscribe(query='ענן "unclosed', email="not an address", cadence="often")
    assert answer.status_code == 400
    text = answer.text
    assert f'<html lang="{language}"' in text
    assert 'id="email"' in text
    assert re.search(r'id="email"[^>]*aria-invalid="true"[^>]*aria-describedby="email-error', text)
    assert 'id="email-error"' in text
    assert 'id="cadence-error"' in text
    # The query's error is marked at its position: the quote that is never closed.
    assert '<code dir="auto">ענן <mark>&#34;</mark>unclosed</code>' in text
    assert re.search(r'id="query"[^>]*aria-invalid="true"', text)
    assert 'href="#email"' in text  # the summary links to each field
    assert world.subs() == []
    assert world.mail.messages == []


async def test_a_post_without_the_forms_token_is_refused(world: World) -> None:
    answer = await world.web.post(
        "/subscribe", data={"query": WORD, "channel": "rss", "language": "he", "cadence": "daily"}
    )
    assert answer.status_code == 403
    assert world.subs() == []


async def test_email_is_confirmed_by_its_link_once_and_only_then_alerts_come(world: World) -> None:
    address = "dana@ngo.example"
    answer = await world.subscribe(email=address, language="he", name="עמותה: ענן")
    assert answer.status_code == 200
    assert "שלחנו קישור אישור" in answer.text
    [sub] = world.subs()
    assert (sub.active, sub.awaiting_confirmation) == (False, True)
    [confirmation] = world.to(address)
    assert confirmation["Content-Language"] == "he"
    assert "נא לאשר את המינוי" in str(confirmation["Subject"])
    link = link_in(confirmation)
    html = confirmation.get_body(("html",))
    assert html is not None
    assert '<html lang="he" dir="rtl">' in html.get_content()
    assert f'href="{link}"' in html.get_content()
    assert link.startswith(f"{SITE}/confirm/")
    assert link.endswith("?lang=he")

    # A matching tender before the address confirmed: nothing is sent to it.
    await world.publish()
    assert len(world.to(address)) == 1

    # Opening the link (a mail scanner does) confirms nothing; its button does.
    page = await world.web.get(path_of(link))
    assert page.status_code == 200
    assert '<form method="post">' in page.text
    assert not world.subs()[0].active
    refused = await world.web.post(path_of(link), data={})
    assert refused.status_code == 403
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    done = await world.web.post(path_of(link), data={"csrf_token": token[1]})
    assert done.status_code == 200
    links = world.agent.links
    [sub] = world.subs()
    assert (sub.active, sub.awaiting_confirmation) == (True, None)
    assert links.feed_url(sub) in done.text
    assert links.calendar_url(sub) in done.text
    assert "/manage/" in done.text

    await world.publish()
    assert len(world.to(address)) == 2
    assert WORD in str(world.to(address)[1]["Subject"])

    # The link works once (confirming renews the subscription's link secret): used
    # again, even after unsubscribing, it is not a link any more and turns nothing on.
    with Session(world.agent.db) as session:
        stored = session.get(Subscription, sub.id)
        assert stored is not None
        subscriptions.set_active(session, stored, False, now=NOW)
        session.commit()
    again = await world.web.post(path_of(link), data={"csrf_token": token[1]})
    assert again.status_code == 404
    assert not world.subs()[0].active


async def test_forged_and_expired_confirmation_links(world: World) -> None:
    await world.subscribe(email="dana@ngo.example")
    link = path_of(link_in(world.to("dana@ngo.example")[0]).split("?")[0])
    public_id, expires, _signature = link.removeprefix("/confirm/").split(".")
    forged = f"/confirm/{public_id}.{expires}.{'0' * 32}"
    assert (await world.web.get(forged)).status_code == 404
    assert (await world.web.get("/confirm/not-a-token")).status_code == 404
    world.clock.now = NOW + timedelta(days=40)
    expired = await world.web.get(link)
    assert expired.status_code == 410
    assert "תוקף קישור האישור פג" in expired.text
    assert not world.subs()[0].active


async def test_one_confirmation_per_address_within_minutes_and_the_page_says_so(
    world: World,
) -> None:
    address = "dana@ngo.example"
    first = await world.subscribe(email=address, language="en")
    second = await world.subscribe(email=address, language="en")
    assert "שלחנו קישור אישור" in first.text  # the visitor's page is in Hebrew
    assert "לפני כמה דקות" in second.text
    assert len(world.to(address)) == 1
    world.clock.now = NOW + timedelta(minutes=6)
    third = await world.subscribe(email=address, language="en")
    assert "שלחנו קישור אישור" in third.text
    assert len(world.to(address)) == 2
    # The same rule for the same address: one subscription, waiting, whatever was resent.
    assert len(world.subs()) == 1
    assert "Please confirm" in str(world.to(address)[1]["Subject"])


async def test_the_answer_does_not_tell_whether_the_address_has_subscriptions(
    world: World,
) -> None:
    known = "known@ngo.example"
    with Session(world.agent.db) as session:
        entry = subscriptions.SubscriptionInput.model_validate(
            {"name": "old", "query": "מחשוב", "channels": ["email"], "email": known}
        )
        subscriptions.save(session, entry, now=NOW)
        session.commit()
    for_known = await world.subscribe(email=known)
    for_new = await world.subscribe(email="new@ngo.example")
    assert for_known.status_code == for_new.status_code == 200
    assert for_known.text.replace(known, "X") == for_new.text.replace("new@ngo.example", "X")
    assert len(world.to(known)) == 1  # its confirmation, as for anyone


async def test_a_failed_confirmation_leaves_the_subscription_waiting_and_is_sent_again(
    world: World,
) -> None:
    address = "dana@ngo.example"
    world.mail.answers["DATA"] = "451 4.3.0 try again later"
    failed = await world.subscribe(email=address)
    assert failed.status_code == 503
    assert "לא הצלחנו לשלוח את האישור" in failed.text
    assert 'value="dana@ngo.example"' in failed.text  # the form keeps what was typed
    [waiting] = world.subs()
    assert waiting.awaiting_confirmation
    world.mail.answers.clear()
    sent = await world.subscribe(email=address)
    assert sent.status_code == 200
    assert len(world.to(address)) == 1
    assert [sub.id for sub in world.subs()] == [waiting.id]


async def test_telegram_connects_through_the_bots_deep_link(world: World) -> None:
    answer = await world.subscribe(channel="telegram", language="en")
    assert answer.status_code == 200
    found = re.search(r"https://t\.me/smart_agent_test_bot\?start=([A-Za-z0-9_-]+)", answer.text)
    assert found is not None
    assert f"https://t.me/smart_agent_test_bot?startgroup={found[1]}" in answer.text
    [sub] = world.subs()
    assert (sub.active, sub.awaiting_confirmation, sub.channels) == (False, True, ["rss"])

    telegram.push(world.bot, private_message(7001, f"/start {found[1]}", language="en"))
    await until(lambda: telegram.texts(world.bot, 7001))
    assert telegram.texts(world.bot, 7001)[0].startswith("Connected")
    [sub] = world.subs()
    assert (sub.active, sub.awaiting_confirmation) == (True, None)
    assert (sub.channels, sub.addresses) == (["telegram"], {"telegram": "7001"})

    await world.publish()
    await until(lambda: len(telegram.texts(world.bot, 7001)) > 1)
    assert WORD in telegram.texts(world.bot, 7001)[1]


async def test_feeds_work_at_once_and_never_take_an_existing_name(world: World) -> None:
    with Session(world.agent.db) as session:
        entry = subscriptions.SubscriptionInput.model_validate(
            {"name": "ענן", "query": "מחשוב", "channels": ["rss"]}
        )
        subscriptions.save(session, entry, now=NOW)
        session.commit()
    answer = await world.subscribe(channel="rss", name="")
    assert answer.status_code == 200
    old, new = world.subs()
    assert (old.name, old.rule) == ("ענן", {"query": "מחשוב"})
    assert (new.name, new.active, new.channels) == ("ענן (2)", True, ["rss"])
    links = world.agent.links
    for url in (links.feed_url(new), links.rss_url(new), links.calendar_url(new)):
        assert url in answer.text
        assert (await world.web.get(path_of(url))).status_code == 200
    assert "/manage/" in answer.text
    assert world.mail.messages == []
