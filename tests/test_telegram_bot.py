"""The Telegram bot over HTTP: real python-telegram-bot, the agent, the Bot API fake.

Every conversation goes through ``getUpdates`` as it would with Telegram:
the test pushes what a person types, the bot's own polling task picks it up,
and the test reads the replies and alerts the fake received. The fake
enforces Telegram's flood limits throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from starlette.applications import Starlette

from agent import outbox, subscriptions
from agent.config import build_config
from agent.models import Delivery, Subscription
from agent.service import Agent
from notifiers.base import ServiceContext, start_background, stop_background
from notifiers.telegram_bot import MUTED
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan, telegram
from tests.fakes.telegram_updates import channel_post, group_message, my_chat_member
from tests.fakes.telegram_updates import private_message as private
from tests.samples import Clock
from tests.user import User, config_text

TOKEN = "123456:TEST-token"
BOT = "smart_agent_test_bot"
NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)
#: Matches one recorded tender.
QUERY = '"בעיתות חירום"'


@dataclass
class World:
    """The agent with its bot listening, the fake Bot API, and the database file."""

    agent: Agent
    bot: Starlette
    clock: Clock
    folder: Path

    def subscribe(self, name: str, language: str = "he") -> tuple[Subscription, str]:
        """Save a subscription (a feed only, for now); return it and its /start token."""
        entry = subscriptions.SubscriptionInput.model_validate(
            {"name": name, "query": QUERY, "channels": ["rss"], "language": language}
        )
        with Session(self.agent.db, expire_on_commit=False) as session:
            sub = subscriptions.save(session, entry, now=self.clock())
            session.commit()
        return sub, self.agent.links.telegram_start(sub)

    async def say(self, update: dict[str, Any], chat: int | None = None) -> str:
        """Push an update; return the visible text of the bot's next message to ``chat``."""
        chat_id = chat if chat is not None else _chat_of(update)
        before = len(telegram.texts(self.bot, chat_id))
        telegram.push(self.bot, update)
        await until(lambda: len(telegram.texts(self.bot, chat_id)) > before)
        return telegram.visible_text(telegram.texts(self.bot, chat_id)[before])

    def sub(self, name: str) -> Subscription:
        with Session(self.agent.db) as session:
            found = subscriptions.by_name(session, name)
            assert found is not None
            return found

    def statuses(self, channel: str = "telegram") -> list[str]:
        with Session(self.agent.db) as session:
            query = select(Delivery.status).where(Delivery.channel == channel)
            return sorted(session.exec(query).all())

    def strings(self, language: str) -> Any:
        return self.agent.renderer.strings(language)["bot"]

    def alerts(self, chat: int) -> list[str]:
        """The alerts (not replies) the chat received: they name the matching tender."""
        return [text for text in telegram.texts(self.bot, chat) if "חירום" in text]


async def until(condition: Callable[[], object]) -> None:
    """Wait, letting the bot's task run, until ``condition`` holds (20 s at most)."""
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _chat_of(update: dict[str, Any]) -> int:
    message = update.get("message") or update.get("channel_post") or {}
    return int(message["chat"]["id"])


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    bot = telegram.build_app(TOKEN)
    bot.state.admins.add(777)
    async with running(tmp_path, bot) as started:
        yield started


@contextlib.asynccontextmanager
async def running(tmp_path: Path, bot: Starlette) -> AsyncIterator[World]:
    """An agent talking with the Telegram fake ``bot``, its listener started."""
    clock = Clock(NOW)
    with serve(ckan.build_app()) as source, serve(bot) as bot_url:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(tmp_path),
                    "templates_dir": str(ROOT / "templates"),
                    "signing_key": "k",
                },
                "notifiers": {"telegram": {"token": TOKEN, "base_url": f"{bot_url}/bot"}},
                "sources": {
                    "tenders": {"kind": "ckan", "base_url": source, "alert_on_first_poll": True}
                },
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=clock) as agent:
            context = ServiceContext(agent.db, agent.links, agent.renderer.strings, agent.clock)
            listening = start_background(agent.notifiers.values(), context)
            try:
                yield World(agent, bot, clock, tmp_path)
            finally:
                await stop_background(listening)


@pytest.mark.parametrize("language", ["he", "ar", "en"])
async def test_a_private_chat_connects_lists_mutes_resumes_and_stops(
    world: World, language: str
) -> None:
    sub, token = world.subscribe("ענן ו-IT <לבריאות> & co", language)
    texts = world.strings(language)
    assert len(token) <= 64

    connected = await world.say(private(5001, f"/start {token}", language="en"))
    assert texts["connected"].split("{")[0] in connected
    assert "ענן ו-IT <לבריאות> & co" in connected, "the name, escaped, shown as written"
    assert "/resume" in connected
    assert world.sub(sub.name).channels == ["rss", "telegram"]
    assert world.sub(sub.name).addresses == {"telegram": "5001"}

    listed = await world.say(private(5001, "/list"))
    assert texts["list_heading"] in listed
    assert sub.name in listed
    assert texts["cadence"]["immediate"] in listed

    assert await world.say(private(5001, "/mute")) == texts["muted"]
    await world.agent.poll_all()
    assert (await world.agent.dispatch()).suppressed == 1
    assert world.alerts(5001) == []
    with Session(world.agent.db) as session:
        held = outbox.suppression(session, "telegram", "5001")
        assert held is not None
        assert held.reason == MUTED

    resumed = await world.say(private(5001, "/resume"))
    assert resumed == texts["resumed"].format(count=1)
    assert (await world.agent.dispatch()).sent == 1
    assert len(world.alerts(5001)) == 1

    stopped = await world.say(private(5001, "/stop"))
    assert sub.name in stopped
    assert world.sub(sub.name).channels == ["rss"]
    assert "telegram" not in world.sub(sub.name).addresses
    # No subscription says the chat's language any more: the user's Telegram language does.
    assert await world.say(private(5001, "/list", language=language)) == texts["not_connected"]
    assert await world.say(private(5001, "/help", language=language)) == texts["help"]


async def test_a_group_connects_by_startgroup_and_only_its_admins_change_it(
    world: World,
) -> None:
    sub, token = world.subscribe("NGO team: emergency tenders")
    texts = world.strings("he")
    group = -1001234567890

    # Whoever added the bot with the subscription's link connects the group.
    reply = await world.say(group_message(group, f"/start@{BOT} {token}", user_id=888))
    assert sub.name in reply
    refused = await world.say(group_message(group, "/mute", user_id=888))
    assert refused == texts["admins_only"]
    telegram.push(world.bot, group_message(group, "/list@another_bot", user_id=888))
    listed = await world.say(group_message(group, f"/list@{BOT}", user_id=888))
    assert sub.name in listed
    assert len(telegram.texts(world.bot, group)) == 3, "another bot's command is not answered"
    assert await world.say(group_message(group, "/mute", user_id=777)) == texts["muted"]
    assert await world.say(group_message(group, "/resume", user_id=777)) == (
        texts["resumed"].format(count=0)
    )

    await world.agent.poll_all()
    await world.agent.dispatch()
    assert world.statuses() == ["sent"]
    assert len(world.alerts(group)) == 1


async def test_a_channel_connects_when_an_admin_posts_start(world: World) -> None:
    sub, token = world.subscribe("channel of alerts", "en")
    channel = -1009876543210
    reply = await world.say(channel_post(channel, f"/start {token}"))
    assert sub.name in reply
    await world.agent.poll_all()
    await world.agent.dispatch()
    assert world.statuses() == ["sent"]
    assert len(world.alerts(channel)) == 1


async def test_a_bad_or_expired_link_connects_nothing(world: World) -> None:
    sub, token = world.subscribe("expiring", "en")
    texts = world.strings("en")
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert (
        await world.say(private(5010, f"/start {forged}", language="en")) == (texts["link_invalid"])
    )
    world.clock.now = NOW + timedelta(days=31)
    assert await world.say(private(5010, f"/start {token}")) == texts["link_expired"]
    assert world.sub(sub.name).channels == ["rss"]


async def test_a_blocked_bot_pauses_the_chat_and_records_why_until_it_is_started_again(
    world: World,
) -> None:
    _, token = world.subscribe("blocked", "en")
    await world.say(private(5020, f"/start {token}"))
    world.bot.state.failures.append("blocked")
    await world.agent.poll_all()
    assert (await world.agent.dispatch()).suppressed == 1
    assert world.statuses() == ["suppressed"]

    (world.folder / "config.toml").write_text(
        config_text(world.agent.config.database_url), encoding="utf-8"
    )
    listed = User(world.folder).run("suppressions", "list").stdout
    assert "telegram  5020" in listed
    assert "Forbidden: bot was blocked by the user" in listed
    assert (await world.agent.dispatch()).sent == 0

    # Unblocking the bot sends /start: the chat is resumed with what was held.
    back = await world.say(private(5020, "/start"))
    assert back == world.strings("en")["welcome_back"].format(count=1)
    assert (await world.agent.dispatch()).sent == 1
    assert len(world.alerts(5020)) == 1
    assert User(world.folder).run("suppressions", "list").stdout == ""


async def test_being_blocked_or_removed_is_recorded_from_the_update(world: World) -> None:
    _, token = world.subscribe("removed")
    group = -1005550001
    await world.say(group_message(group, f"/start {token}", user_id=777))
    telegram.push(world.bot, my_chat_member(group, "kicked"))

    def reason() -> str | None:
        with Session(world.agent.db) as session:
            found = outbox.suppression(session, "telegram", str(group))
            return found.reason if found else None

    await until(reason)
    assert reason() == "bot was removed (kicked)"


async def test_a_429_waits_retry_after_and_is_delivered_once(world: World) -> None:
    _, token = world.subscribe("flooded", "en")
    await world.say(private(5030, f"/start {token}"))
    world.bot.state.failures.append("flood")
    await world.agent.poll_all()
    result = await world.agent.dispatch()
    assert (result.retrying, result.errors, world.statuses()) == (1, [], ["retrying"])
    with Session(world.agent.db) as session:
        row = session.exec(select(Delivery).where(Delivery.channel == "telegram")).one()
    assert (row.status, row.attempts, row.next_attempt_at) == (
        "retrying",
        0,
        NOW + timedelta(seconds=1),
    )
    assert (await world.agent.dispatch()).sent == 0, "not before retry_after"
    world.clock.now = NOW + timedelta(seconds=2)
    assert (await world.agent.dispatch()).sent == 1
    assert (await world.agent.dispatch()).sent == 0
    assert len(world.alerts(5030)) == 1


async def test_html_telegram_refuses_is_delivered_as_plain_text(world: World) -> None:
    _, token = world.subscribe("plain", "en")
    await world.say(private(5040, f"/start {token}"))
    world.bot.state.failures.append("parse")
    await world.agent.poll_all()
    await world.agent.dispatch()
    assert world.statuses() == ["sent"]
    [alert] = [m for m in world.bot.state.sent if m["chat_id"] == "5040" and "חירום" in m["text"]]
    assert "parse_mode" not in alert
    assert "<b>" not in alert["text"]


async def test_telegram_out_of_reach_at_start_is_waited_out(tmp_path: Path) -> None:
    bot = telegram.build_app(TOKEN)
    # A 502 twice, as Telegram's front end answers while the API behind it is down.
    bot.state.method_failures["setMyCommands"] = ["server_error", "server_error"]
    async with running(tmp_path, bot) as world:
        # Tried again after 1 s, then 2 s: then the bot listens as usual.
        await until(lambda: "getUpdates" in world.bot.state.calls)
        assert world.bot.state.calls.count("setMyCommands") == 2 + 4
        sub, token = world.subscribe("late", "en")
        await world.say(private(5050, f"/start {token}"))
        assert world.sub(sub.name).addresses == {"telegram": "5050"}


async def test_the_bot_offers_its_commands_in_every_language(world: World) -> None:
    # The commands are set first, then the webhook is removed: wait for both.
    await until(lambda: "deleteWebhook" in world.bot.state.calls)
    assert len(world.bot.state.commands) == 4
    english = {c["command"]: c["description"] for c in world.bot.state.commands["en"]}
    assert set(english) == {"list", "mute", "resume", "stop", "help"}
    assert english["mute"] == world.strings("en")["commands"]["mute"]
    assert world.bot.state.commands[None] == world.bot.state.commands["he"]
