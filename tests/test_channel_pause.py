"""A channel nobody can reach: paused for every worker, nothing lost, sent in order once back.

Real parts only: the database of this run (``tests.databases``), an aiosmtpd
server that is not there and then is, on the same port, and the Telegram Bot
API fake answering 502 Bad Gateway, as Telegram's front end does when the
API behind it is down.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from agent import subscriptions
from agent.config import build_config
from agent.leases import Lease
from agent.models import Delivery
from agent.service import Agent
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan, telegram
from tests.fakes.smtp import Mailbox, smtp_in_thread
from tests.samples import Clock
from tests.service import SIGNING_KEY, TELEGRAM_TOKEN, free_port

NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)
PEOPLE = 3


@dataclass
class Setup:
    """An agent whose e-mail server is down and whose Telegram cannot be reached."""

    agent: Agent
    clock: Clock
    smtp_port: int
    #: Servers a test starts: they stop after the agent has closed its connections.
    servers: contextlib.ExitStack

    def mail_back(self) -> Mailbox:
        """Start the e-mail server, on the configured port, until the test ends."""
        return self.servers.enter_context(smtp_in_thread(self.smtp_port))

    def rows(self, channel: str) -> list[Delivery]:
        """The channel's deliveries, oldest first."""
        with Session(self.agent.db) as session:
            query = select(Delivery).where(col(Delivery.channel) == channel)
            return list(session.exec(query.order_by(col(Delivery.id))).all())

    def pause(self, channel: str) -> Lease | None:
        """The channel's pause, if it ever had one."""
        with Session(self.agent.db) as session:
            return session.get(Lease, f"pause:{channel}")


@pytest.fixture
def config(tmp_path: Path) -> Iterator[dict[str, Any]]:
    bot = telegram.build_app(TELEGRAM_TOKEN)
    bot.state.failures.extend(["server_error"] * 100)  # sendMessage only: getMe works
    with serve(ckan.build_app()) as source, serve(bot) as bot_url:
        yield {
            "agent": {
                "database_url": databases.url(tmp_path),
                "templates_dir": str(ROOT / "templates"),
                "signing_key": SIGNING_KEY,
                "max_attempts": 2,
                "hourly_cap": 0,
                # One send at a time: the order they arrive in is the order they were claimed.
                "send_concurrency": 1,
            },
            "notifiers": {
                "email": {"host": "127.0.0.1", "port": free_port(), "timeout": 5},
                "telegram": {"token": TELEGRAM_TOKEN, "base_url": f"{bot_url}/bot"},
            },
            "sources": {
                "tenders": {"kind": "ckan", "base_url": source, "alert_on_first_poll": True}
            },
        }


@pytest.fixture
async def setup(config: dict[str, Any], tmp_path: Path) -> AsyncIterator[Setup]:
    clock = Clock(NOW)
    servers = contextlib.ExitStack()
    with servers:
        async with Agent.open(build_config(config, base_dir=tmp_path), clock=clock) as agent:
            subscribe(agent)
            assert (await agent.poll("tenders")).deliveries
            yield Setup(agent, clock, config["notifiers"]["email"]["port"], servers)


def subscribe(agent: Agent) -> None:
    """Subscribe ``PEOPLE`` people to every tender, by e-mail and Telegram."""
    with Session(agent.db) as session:
        for n in range(PEOPLE):
            given = subscriptions.SubscriptionInput.model_validate(
                {
                    "name": f"member {n}",
                    "channels": ["email", "telegram"],
                    "email": f"m{n}@ngo.example",
                    "telegram_chat_id": f"-100{n:06d}",
                    "kinds": ["tender"],
                }
            )
            subscriptions.save(session, given, now=NOW)
        session.commit()


async def test_an_unreachable_server_pauses_the_channel_and_uses_no_attempt(setup: Setup) -> None:
    result = await setup.agent.dispatch()

    assert result.sent == 0
    assert result.dead == 0
    rows = setup.rows("email")
    # The sends under way when it failed wait; nothing was claimed after it.
    assert {r.status for r in rows} <= {"retrying", "pending"}
    assert {r.attempts for r in rows} == {0}
    assert "Connect call failed" in (rows[0].last_error or "")
    pause = setup.pause("email")
    assert pause is not None
    assert pause.failures == 1
    assert pause.until == NOW + timedelta(seconds=5)


async def test_while_paused_nobody_tries_and_the_pause_doubles(setup: Setup) -> None:
    await setup.agent.dispatch()
    tried = setup.rows("email")[0].last_error

    again = await setup.agent.dispatch()  # within the pause: the channel is left alone
    assert again.retrying == 0
    setup.clock.now = NOW + timedelta(seconds=6)
    await setup.agent.dispatch()  # tried again, fails again: twice as long
    pause = setup.pause("email")
    assert pause is not None
    assert pause.failures == 2
    assert pause.until == setup.clock.now + timedelta(seconds=10)
    assert setup.rows("email")[0].last_error == tried


async def test_once_back_everything_goes_in_the_order_it_was_made(setup: Setup) -> None:
    for minutes in (0, 1, 2):  # three tries while down: no attempt is used up, none dies
        setup.clock.now = NOW + timedelta(minutes=minutes)
        await setup.agent.dispatch()
    made = [(r.subscription_id, r.id) for r in setup.rows("email")]

    mail = setup.mail_back()
    setup.clock.now = NOW + timedelta(minutes=10)
    result = await setup.agent.dispatch()
    received = [str(m["To"]) for m in mail.messages]

    assert result.sent == len(made)
    assert {r.status for r in setup.rows("email")} == {"sent"}
    # One message a subscriber, in the order their alerts were queued.
    order = list(dict.fromkeys(sub for sub, _ in made))
    assert received == [f"m{sub - order[0]}@ngo.example" for sub in order]
    pause = setup.pause("email")
    assert pause is not None
    assert pause.failures == 0


async def test_one_channel_down_does_not_hold_up_the_other(setup: Setup) -> None:
    mail = setup.mail_back()
    result = await setup.agent.dispatch()
    assert len(mail.messages) == PEOPLE
    assert result.sent == len(setup.rows("email"))
    assert {r.status for r in setup.rows("telegram")} <= {"retrying", "pending"}
    telegram_pause = setup.pause("telegram")
    assert telegram_pause is not None
    assert telegram_pause.failures == 1
