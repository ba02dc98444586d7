"""A source failing N times in a row: one alert to the admins, one "recovered", one sender.

Real agents over one real database (``tests.databases``) poll the CKAN fake
(failing, then working again through a ``Switch``); the alerts go through
aiosmtpd and the Telegram
Bot API fake, and the tests count what reached them. The last test runs the
real ``smart-agent serve`` child process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from starlette.applications import Starlette

from agent import admin_alerts
from agent.config import AdminAlertSettings, Config, build_config
from agent.errors import ConfigError
from agent.models import SourceState
from agent.service import Agent
from notifiers import CHANNELS
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan, telegram
from tests.fakes.smtp import Mailbox, smtp_in_thread
from tests.service import TELEGRAM_TOKEN, Switch, serving, smart_agent, wait_until

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
OPS = "ops@ngo.example"
CHAT = "-1009876543210"
SOURCE = "tenders"


@dataclass
class World:
    """The fakes the agents talk to, and how to configure one more agent over the database."""

    source: Switch
    mail: Mailbox
    bot: Starlette
    folder: Path
    source_url: str
    bot_url: str

    @property
    def config(self) -> Config:
        """A new configuration, so each agent opens channels of its own."""
        return make_config(self.folder, self.source_url, self.mail, self.bot_url)

    def mails(self) -> list[str]:
        """The subjects of the e-mails the admins got."""
        return [str(m["Subject"]) for m in self.mail.messages if m["To"] == OPS]

    def chats(self) -> list[str]:
        """The Telegram texts the admins' chat got."""
        return telegram.texts(self.bot, CHAT)


def make_config(
    tmp_path: Path, source_url: str, mail: Mailbox, bot_url: str, **alerts: Any
) -> Config:
    """Agent settings with the admins on e-mail and Telegram, alerted after 3 failures."""
    settings = {"after": 3, "email": OPS, "telegram_chat_id": CHAT} | alerts
    return build_config(
        {
            "agent": {
                "database_url": databases.url(tmp_path),
                "templates_dir": str(ROOT / "templates"),
                "public_url": "https://alerts.example.org",
                "signing_key": "admin-alerts-test-key",
                "admin_alerts": settings,
            },
            "notifiers": {
                "email": {"host": mail.host, "port": mail.port},
                # Alerts and recoveries follow each other within a second here:
                # Telegram's per-chat limit is not what these tests are about.
                "telegram": {
                    "token": TELEGRAM_TOKEN,
                    "base_url": f"{bot_url}/bot",
                    "chat_messages_per_second": 1000,
                    "group_messages_per_minute": 10_000,
                },
            },
            "sources": {SOURCE: {"kind": "ckan", "base_url": source_url}},
        },
        base_dir=tmp_path,
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A failing CKAN source, aiosmtpd and the Bot API fake, all on loopback."""
    source = Switch(ckan.build_app(fail="500"))
    bot = telegram.build_app(TELEGRAM_TOKEN)
    bot.state.flood_limits = False
    with serve(source) as source_url, serve(bot) as bot_url, smtp_in_thread() as mail:
        yield World(source, mail, bot, tmp_path, source_url, bot_url)


@pytest.fixture
async def agent(world: World) -> AsyncIterator[Agent]:
    """A real agent over the world, its clock fixed."""
    async with Agent.open(world.config, clock=lambda: NOW) as opened:
        yield opened


async def polls(agent: Agent, count: int) -> None:
    """Poll the source ``count`` times."""
    for _ in range(count):
        await agent.poll(SOURCE)


async def test_the_nth_failure_alerts_once_and_recovery_once(world: World, agent: Agent) -> None:
    await polls(agent, 2)
    assert (world.mails(), world.chats()) == ([], [])

    await polls(agent, 1)
    [subject] = world.mails()
    assert SOURCE in subject
    assert "3" in subject
    [text] = world.chats()
    assert SOURCE in text
    assert "500" in text
    assert "המקור" in subject + text, "written in the service's language, Hebrew"

    await polls(agent, 3)
    assert (len(world.mails()), len(world.chats())) == (1, 1)

    world.source.app = ckan.build_app()
    await polls(agent, 2)
    assert len(world.mails()) == len(world.chats()) == 2
    assert "עונה שוב" in world.mails()[1]
    assert "חזר לענות" in world.chats()[1]

    # A new run of failures is a new alert.
    world.source.app = ckan.build_app(fail="500")
    await polls(agent, 3)
    assert len(world.mails()) == len(world.chats()) == 3


async def test_telegrams_flood_control_delays_the_alert_and_does_not_lose_it(
    world: World, agent: Agent
) -> None:
    world.bot.state.failures.append("flood")  # one 429: "retry after 1"
    await polls(agent, 3)
    assert len(world.mails()) == 1
    [text] = world.chats()
    assert SOURCE in text


async def test_the_alert_is_in_the_configured_language_with_a_link(
    tmp_path: Path, world: World
) -> None:
    config = make_config(
        tmp_path, world.source_url, world.mail, world.bot_url, language="en", after=1
    )
    async with Agent.open(config, clock=lambda: NOW) as agent:
        await polls(agent, 1)
    [mail] = world.mail.messages
    assert mail["Subject"] == f"Source \u2068{SOURCE}\u2069 is failing (1 polls in a row)"
    plain = mail.get_body(("plain",))
    assert plain is not None
    body = plain.get_content()
    assert "https://alerts.example.org/admin/sources" in body
    assert "500" in body


async def test_two_agents_racing_on_one_failure_send_one_alert(world: World, agent: Agent) -> None:
    await polls(agent, 2)
    async with Agent.open(world.config, clock=lambda: NOW) as other:
        await asyncio.gather(agent.poll(SOURCE), other.poll(SOURCE))
        assert (len(world.mails()), len(world.chats())) == (1, 1)

        world.source.app = ckan.build_app()
        await asyncio.gather(agent.poll(SOURCE), other.poll(SOURCE))
    assert (len(world.mails()), len(world.chats())) == (2, 2)


async def test_the_claim_is_won_by_exactly_one_process(world: World, agent: Agent) -> None:
    await polls(agent, 2)  # below the threshold: nothing sent, nothing claimed
    with Session(agent.db) as session:
        state = session.get(SourceState, SOURCE)
        assert state is not None
        state.consecutive_failures = 3
        session.add(state)
        session.commit()
    async with Agent.open(world.config, clock=lambda: NOW) as other:
        engines = [agent.db, other.db] * 3
        won = await asyncio.gather(
            *(
                asyncio.to_thread(admin_alerts.claim_failing, e, SOURCE, after=3, now=NOW)
                for e in engines
            )
        )
        assert sum(won) == 1
        with Session(agent.db) as session:
            state = session.get(SourceState, SOURCE)
            assert state is not None
            state.consecutive_failures = 0
            session.add(state)
            session.commit()
        cleared = await asyncio.gather(
            *(asyncio.to_thread(admin_alerts.claim_recovered, e, SOURCE) for e in engines)
        )
        assert sum(cleared) == 1


async def test_a_channel_that_fails_is_logged_and_the_next_failure_tries_again(
    world: World, agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    world.mail.refuse.add(OPS)
    config_without_telegram = world.config.agent.admin_alerts.model_copy(
        update={"telegram_chat_id": None}
    )
    alerts = admin_alerts.AdminAlerts(
        config_without_telegram, agent.notifiers, agent.renderer, "https://alerts.example.org"
    )
    await polls(agent, 3)  # the agent's own alert: e-mail refused, Telegram sent
    assert len(world.chats()) == 1
    with Session(agent.db) as session:
        state = session.get(SourceState, SOURCE)
        assert state is not None
        assert state.alerted_at is not None, "Telegram took it"
        state.alerted_at = None
        session.add(state)
        session.commit()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="agent.admin_alerts"):
        assert not await alerts.after_failure(agent.db, SOURCE, now=NOW + timedelta(minutes=1))
    [line] = [r.getMessage() for r in caplog.records if r.name == "agent.admin_alerts"]
    assert "not sent by email" in line
    with Session(agent.db) as session:
        state = session.get(SourceState, SOURCE)
        assert state is not None
        assert state.alerted_at is None, "released for the next failure"

    world.mail.refuse.clear()
    assert await alerts.after_failure(agent.db, SOURCE, now=NOW + timedelta(minutes=2))
    assert len(world.mails()) == 1


async def test_zero_turns_the_alerts_off(world: World, agent: Agent) -> None:
    alerts = admin_alerts.AdminAlerts(
        world.config.agent.admin_alerts.model_copy(update={"after": 0}),
        agent.notifiers,
        agent.renderer,
        "https://alerts.example.org",
    )
    await polls(agent, 1)
    for _ in range(5):
        assert not await alerts.after_failure(agent.db, SOURCE, now=NOW)


def test_a_bad_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.admin_alerts\.emial"):
        build_config({"agent": {"admin_alerts": {"emial": OPS}}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"agent\.admin_alerts\.language"):
        build_config({"agent": {"admin_alerts": {"language": "fr"}}}, base_dir=tmp_path)


def test_every_addressed_channel_has_a_setting() -> None:
    fields = set(AdminAlertSettings.model_fields)
    addressed = {cls.address_field for cls in CHANNELS.values() if cls.address_field}
    assert addressed <= fields


SERVE_CONFIG = """
[agent]
database_url = "{database}"
templates_dir = "{templates}"
retry_first = 1
retry_cap = 1

[agent.admin_alerts]
after = 2
email = "{ops}"
telegram_chat_id = "{chat}"

[server]
port = 0

[notifiers.email]
host = "127.0.0.1"
port = {smtp_port}
from_address = "Smart Agent <alerts@example.org>"

[notifiers.telegram]
base_url = "{bot}/bot"

[sources.datagov-tenders]
kind = "ckan"
base_url = "{source}"
dataset = "tenders"
every = 1
"""


def test_serve_tells_the_admins_by_email_when_a_source_fails_and_recovers(
    tmp_path: Path,
) -> None:
    source = Switch(ckan.build_app(fail="500"))
    bot = telegram.build_app(TELEGRAM_TOKEN)
    with serve(source) as source_url, serve(bot) as bot_url, smtp_in_thread() as mail:
        config = SERVE_CONFIG.format(
            database=databases.url(tmp_path),
            templates=ROOT / "templates",
            ops=OPS,
            chat=CHAT,
            smtp_port=mail.port,
            bot=bot_url,
            source=source_url,
        )
        (tmp_path / "config.toml").write_text(config, encoding="utf-8")
        smart_agent(tmp_path, "init")
        with serving(tmp_path):
            wait_until(lambda: mail.messages, what="the admins' alert")
            source.app = ckan.build_app()
            wait_until(lambda: len(mail.messages) >= 2, what="the 'recovered' message")
    first, second = mail.messages
    assert first["To"] == second["To"] == OPS
    assert "datagov-tenders" in str(first["Subject"])
    assert "נכשל" in str(first["Subject"])
    assert "עונה שוב" in str(second["Subject"])
    assert len(telegram.texts(bot, CHAT)) == 2
