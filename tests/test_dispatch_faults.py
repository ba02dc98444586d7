"""The outbox under faults: racing dispatchers, poison rows, unsubscribes, 429 storms, kills.

Every test here reproduces a failure seen in fault testing (issue #9) against
real parts: the run's database (``tests.databases``), the aiosmtpd server,
the Telegram Bot API fake and, for the race, two dispatcher processes released at the same instant.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from agent import outbox, subscriptions
from agent.config import build_config, load_config
from agent.models import Delivery, StoredEvent, Subscription
from agent.service import Agent
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan, telegram
from tests.fakes.smtp import smtp_in_thread
from tests.samples import Clock, delivery_row
from tests.service import SIGNING_KEY, TELEGRAM_TOKEN, user_env

NOW = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)
#: Every recorded tender and exemption matches.
EVERYTHING = {"kinds": ["tender", "exemption"]}
#: Telegram's flood limits lifted, in the bot's config and in the fake.
UNLIMITED = {
    "messages_per_second": 10_000,
    "chat_messages_per_second": 10_000,
    "group_messages_per_minute": 10_000,
}


@dataclass
class World:
    """Sources, channels and a config file; subscriptions are added per test."""

    folder: Path
    config: dict[str, Any]
    mail: Any
    bot: Any
    clock: Clock

    def write_config(self) -> Path:
        """Write the config as TOML-free JSON-ish TOML for child processes."""
        path = self.folder / "config.toml"
        path.write_text(_toml(self.config), encoding="utf-8")
        return path

    def deliveries(self, agent: Agent) -> list[Delivery]:
        with Session(agent.db) as session:
            return list(session.exec(select(Delivery)).all())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    bot = telegram.build_app(TELEGRAM_TOKEN)
    bot.state.flood_limits = False
    with (
        serve(ckan.build_app()) as source,
        serve(bot) as bot_url,
        smtp_in_thread() as mail,
    ):
        config = {
            "agent": {
                "database_url": databases.url(tmp_path),
                "templates_dir": str(ROOT / "templates"),
                "signing_key": SIGNING_KEY,
                "max_attempts": 3,
            },
            "notifiers": {
                "email": {"host": "127.0.0.1", "port": mail.port},
                # Floods are tested in test_telegram_bot.py; here each row's fate is what counts.
                "telegram": {"token": TELEGRAM_TOKEN, "base_url": f"{bot_url}/bot", **UNLIMITED},
            },
            "sources": {
                "tenders": {"kind": "ckan", "base_url": source, "alert_on_first_poll": True}
            },
        }
        yield World(tmp_path, config, mail, bot, Clock(NOW))


@pytest.fixture
async def agent(world: World) -> AsyncIterator[Agent]:
    async with Agent.open(
        build_config(world.config, base_dir=world.folder), clock=world.clock
    ) as a:
        yield a


def subscribe(agent: Agent, count: int, channel: str, **fields: Any) -> list[int]:
    """Save ``count`` subscriptions on ``channel`` that match every recorded item."""
    ids = []
    with Session(agent.db) as session:
        for n in range(count):
            address = (
                {"email": f"member{n}@ngo.example"}
                if channel == "email"
                else {"telegram_chat_id": f"-100{n:06d}"}
            )
            entry = subscriptions.SubscriptionInput.model_validate(
                {"name": f"sub {n}", "channels": [channel], **address, **EVERYTHING, **fields}
            )
            ids.append(subscriptions.save(session, entry, now=NOW).id or 0)
        session.commit()
    return ids


async def test_two_dispatchers_released_at_the_same_instant_send_each_alert_once(
    world: World, agent: Agent
) -> None:
    subscribe(agent, 40, "email")
    await agent.poll_all()
    queued = len(world.deliveries(agent))
    assert queued >= 40 * 20
    config = world.write_config()
    at = time.time() + 4  # both children are up by then, and start together

    def child() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tests.dispatch_child", str(config), str(at)]
        return subprocess.run(
            command, cwd=ROOT, env=user_env(), capture_output=True, text=True, timeout=120
        )

    runs = await asyncio.gather(asyncio.to_thread(child), asyncio.to_thread(child))
    assert [run.returncode for run in runs] == [0, 0], [run.stderr for run in runs]
    assert sum(int(run.stdout.strip()) for run in runs) == queued
    recipients = Counter(str(m["To"]) for m in world.mail.messages)
    assert len(recipients) == 40
    assert set(recipients.values()) == {1}, "no subscriber got the same alerts twice"
    assert {d.status for d in world.deliveries(agent)} == {"sent"}


async def test_a_poison_row_fails_alone_and_everyone_else_is_served(
    world: World, agent: Agent
) -> None:
    good = subscribe(agent, 2, "telegram")
    await agent.poll_all()
    with Session(agent.db) as session:
        # A bad address that slipped past validation, and one event too big for any message.
        bad = session.get(Subscription, good[1])
        assert bad is not None
        bad.channels = ["telegram", "email"]
        bad.addresses = {
            **bad.addresses,
            "email": "member@ngo.example\r\nBcc: everyone@example.org",
        }
        session.add(bad)
        [event] = session.exec(select(StoredEvent).limit(1)).all()
        event.snapshot = {**event.snapshot, "publisher": "משרד " * 25_000}
        session.add(event)
        session.commit()
        outbox.enqueue(session, [delivery_row(good[1], event.id or 0, "email", at=NOW)])
        session.commit()
    result = await agent.dispatch()
    rows = world.deliveries(agent)
    failed = [d for d in rows if d.status != "sent"]
    # Everyone gets every alert on Telegram but the poisoned event's.
    assert Counter((d.subscription_id, d.channel) for d in failed) == {
        (good[0], "telegram"): 1,
        (good[1], "telegram"): 1,
        (good[1], "email"): 1,
    }
    poisoned = [d for d in failed if d.channel == "telegram"]
    assert {d.status for d in poisoned} == {"retrying"}
    assert all(d.last_error and "cannot render or send" in d.last_error for d in poisoned)
    # The line break never reaches an SMTP command: the address is refused for good.
    [mail] = [d for d in failed if d.channel == "email"]
    assert mail.status == "dead"
    assert "is not an e-mail address" in (mail.last_error or "")
    assert result.sent == len(rows) - len(failed)
    assert not world.mail.messages
    assert {m["chat_id"] for m in world.bot.state.sent} == {"-100000000", "-100000001"}


async def test_unsubscribing_cancels_a_queued_digest(world: World, agent: Agent) -> None:
    [sub_id] = subscribe(agent, 1, "email", cadence="daily")
    await agent.poll_all()
    with Session(agent.db) as session:
        sub = session.get(Subscription, sub_id)
        assert sub is not None
        link = agent.links.unsubscribe_url(sub)
    from agent.web import create_app

    app = create_app(agent)
    with serve(app) as site:
        path = link.split("/unsubscribe/", 1)[1]
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{site}/unsubscribe/{path}", data={"List-Unsubscribe": "One-Click"}
            )
    assert answer.status_code == 200
    world.clock.now = NOW + timedelta(days=2)  # past the digest hour
    result = await agent.dispatch()
    assert result.sent == 0
    assert not world.mail.messages
    assert {d.status for d in world.deliveries(agent)} == {"cancelled"}


async def test_a_429_storm_delays_but_kills_nothing(world: World, agent: Agent) -> None:
    subscribe(agent, 30, "telegram")
    await agent.poll_all()
    # Seven in ten answers are 429s, with retry_after = 30 s.
    world.bot.state.failures.extend(["rate_limit"] * 7 + ["ok"] * 3)
    world.bot.state.failures *= 30
    for _ in range(40):
        await agent.dispatch()
        world.clock.now += timedelta(seconds=31)
    statuses = Counter(d.status for d in world.deliveries(agent))
    assert list(statuses) == ["sent"]
    sent = Counter((m["chat_id"], m["text"]) for m in world.bot.state.sent)
    assert sent.most_common(1)[0][1] == 1, "no message went out twice"
    assert len({chat for chat, _ in sent}) == 30


async def test_a_restart_after_a_kill_sends_what_the_dead_run_never_reached(
    world: World, agent: Agent
) -> None:
    ids = subscribe(agent, 3, "email")
    await agent.poll_all()
    with Session(agent.db) as session:
        # The killed run had claimed its first group and was sending it.
        [first, *_] = outbox.due_groups(session, now=NOW)
        assert outbox.claim(session, first, now=NOW, owner="killed")
        session.commit()
    per_sub = len(world.deliveries(agent)) // 3
    result = await agent.dispatch()  # restarted at once, inside the dead run's lease
    assert result.sent == 2 * per_sub
    assert len(world.mail.messages) == 2
    world.clock.now = NOW + outbox.LEASE
    assert (await agent.dispatch()).sent == per_sub, "the interrupted group after its lease"
    assert sorted(str(m["To"]) for m in world.mail.messages) == sorted(
        f"member{n}@ngo.example" for n in range(len(ids))
    )


def test_the_race_child_reads_the_same_config(world: World) -> None:
    config = load_config(world.write_config())
    assert config.sources["tenders"].alert_on_first_poll


def _toml(data: dict[str, Any], prefix: str = "") -> str:
    """Write a nested dict of scalars as TOML tables (enough for these configs)."""
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and scalars else []
    lines += [f"{key} = {_value(value)}" for key, value in scalars.items()]
    for key, value in tables.items():
        lines.append(_toml(value, f"{prefix}.{key}" if prefix else key))
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
