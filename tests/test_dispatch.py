"""The dispatcher against a failing Telegram: rate limits wait, blocked bots die, none is lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from agent import subscriptions
from agent.config import build_config
from agent.models import Delivery, Subscription
from agent.service import Agent
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan, telegram
from tests.samples import Clock

TOKEN = "42:dispatch-test"
NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)


@dataclass
class Setup:
    agent: Agent
    bot: Any
    clock: Clock

    def deliveries(self) -> dict[str, Delivery]:
        with Session(self.agent.db) as session:
            rows = session.exec(select(Delivery, Subscription.name).join(Subscription)).all()
            return {name: delivery for delivery, name in rows}


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    bot = telegram.build_app(TOKEN)
    clock = Clock(NOW)
    with serve(ckan.build_app()) as source, serve(bot) as bot_url:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(tmp_path),
                    "templates_dir": str(ROOT / "templates"),
                    "max_attempts": 3,
                },
                "notifiers": {"telegram": {"token": TOKEN, "base_url": f"{bot_url}/bot"}},
                "sources": {
                    "tenders": {"kind": "ckan", "base_url": source, "alert_on_first_poll": True}
                },
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=clock) as agent:
            with Session(agent.db) as session:
                for name, chat in (("first", "-100111"), ("second", "-100222")):
                    entry = subscriptions.SubscriptionInput.model_validate(
                        {
                            "name": name,
                            "query": '"בעיתות חירום"',
                            "channels": ["telegram"],
                            "telegram_chat_id": chat,
                        }
                    )
                    subscriptions.save(session, entry, now=NOW)
                session.commit()
            await agent.poll_all()
            yield Setup(agent, bot, clock)


async def test_rate_limit_waits_and_blocked_bot_is_suppressed_then_the_rest_is_sent_once(
    setup: Setup,
) -> None:
    setup.bot.state.failures.extend(["rate_limit", "blocked"])
    result = await setup.agent.dispatch()
    assert (result.sent, result.retrying, result.dead, result.suppressed) == (0, 1, 0, 1)
    rows = setup.deliveries()
    waiting = next(d for d in rows.values() if d.status == "retrying")
    assert waiting.next_attempt_at == NOW + timedelta(seconds=30)
    held = next(d for d in rows.values() if d.status == "suppressed")
    assert "blocked" in (held.last_error or "")

    # Not due yet: nothing is sent early.
    assert (await setup.agent.dispatch()).sent == 0
    setup.clock.now = NOW + timedelta(seconds=31)
    assert (await setup.agent.dispatch()).sent == 1
    assert (await setup.agent.dispatch()).sent == 0
    assert len(setup.bot.state.sent) == 1


async def test_a_channel_down_for_long_keeps_every_alert_waiting_without_using_attempts(
    setup: Setup,
) -> None:
    # Telegram's 502s: the API cannot be reached by anyone, so no alert is at fault.
    setup.bot.state.failures.extend(["server_error"] * 6)  # both chats, three times
    for minutes in (0, 2, 5):
        setup.clock.now = NOW + timedelta(minutes=minutes)
        await setup.agent.dispatch()
    waiting = setup.deliveries().values()
    assert {d.status for d in waiting} == {"retrying"}
    assert {d.attempts for d in waiting} == {0}
    assert setup.bot.state.sent == []
    setup.clock.now = NOW + timedelta(minutes=10)  # the fake answers again
    assert (await setup.agent.dispatch()).sent == 2
    assert len(setup.bot.state.sent) == 2
