"""End to end, as a user drives it: real tenders become an e-mail, a Telegram message
and a feed entry; a second run sends nothing; a changed tender sends an update.

Everything is real and runs on loopback: the ``smart-agent`` command in a child
process, a CKAN server with the recorded tenders, an aiosmtpd mail server, a
Telegram Bot API fake, SQLite in a temporary folder, and ``smart-agent serve``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.conftest import ROOT, serve
from tests.fakes import ckan, telegram
from tests.fakes.smtp import smtp_in_thread

TOKEN = "123456:TEST-token"
CHAT = "-1001234567890"


class Switch:
    """An ASGI app whose behaviour a test can swap while it is being served."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


@dataclass
class World:
    """The running servers and the user's folder."""

    folder: Path
    source: Switch
    records: list[dict[str, str]]
    mail: Any
    bot: Any
    port: int

    def env(self) -> dict[str, str]:
        """The environment a user would export: secrets stay out of the file."""
        return {
            **os.environ,
            "SMART_AGENT_NOTIFIERS__TELEGRAM__TOKEN": TOKEN,
            "SMART_AGENT_AGENT__SIGNING_KEY": "test-signing-key",
        }

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``smart-agent`` the way a user does, in the user's folder."""
        result = subprocess.run(
            [sys.executable, "-m", "agent", *args],
            cwd=self.folder,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def emails(self) -> list[EmailMessage]:
        return list(self.mail.messages)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    records = ckan.real_records()
    source = Switch(ckan.build_app(records))
    bot = telegram.build_app(TOKEN)
    with serve(source) as source_url, serve(bot) as bot_url, smtp_in_thread() as mail:
        port = free_port()
        (tmp_path / "config.toml").write_text(
            CONFIG.format(source=source_url, bot=bot_url, smtp_port=mail.port, port=port),
            encoding="utf-8",
        )
        (tmp_path / "subscriptions.toml").write_text(SUBSCRIPTIONS, encoding="utf-8")
        yield World(tmp_path, source, records, mail, bot, port)


CONFIG = """
[agent]
database_url = "sqlite:///var/agent.db"
public_url = "http://127.0.0.1:{port}"
templates_dir = "{templates}"

[server]
port = {port}

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
alert_on_first_poll = true
""".replace("{templates}", str(ROOT / "templates"))

SUBSCRIPTIONS = """
[[subscriptions]]
name = "solar engineering, for the NGO team"
query = 'סולאריות OR "ליווי וייעוץ"'
kinds = ["tender"]
channels = ["email", "telegram", "rss"]
email = "team@ngo.example"
telegram_chat_id = "-1001234567890"
language = "he"

[[subscriptions]]
name = "nothing matches this"
query = "צוללות"
channels = ["email"]
email = "nobody@example.org"
"""


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def test_recorded_tender_reaches_email_telegram_and_feed_once_then_updates(world: World) -> None:
    world.cli("init")
    assert "imported 2" in world.cli("subscriptions", "import", "subscriptions.toml").stdout

    first = world.cli("run-once").stdout
    assert "datagov-tenders: ok" in first

    [mail] = world.emails()
    assert mail["To"] == "team@ngo.example"
    assert mail["Message-ID"]
    assert mail["List-Unsubscribe"].startswith("<http://127.0.0.1:")
    html_part = mail.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert 'dir="rtl"' in html
    assert "סולאריות" in html
    assert len(world.bot.state.sent) >= 1
    assert all(m["chat_id"] == CHAT for m in world.bot.state.sent)
    assert any("סולאריות" in m["text"] for m in world.bot.state.sent)
    telegram_count = len(world.bot.state.sent)

    # The same data again: nothing new is sent anywhere.
    world.cli("run-once")
    assert len(world.emails()) == 1
    assert len(world.bot.state.sent) == telegram_count

    # The feed, as a reader fetches it from the running service.
    listed = world.cli("subscriptions", "list", "--json").stdout
    feed_url = next(line.split('"')[3] for line in listed.splitlines() if '"feed_url"' in line)
    with subprocess.Popen(
        [sys.executable, "-m", "agent", "serve"],
        cwd=world.folder,
        env=world.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as server:
        try:
            wait_for_http(f"http://127.0.0.1:{world.port}/health")
            feed = feedparser.parse(httpx.get(feed_url).content)
            assert any("סולאריות" in entry.title for entry in feed.entries)
            health = httpx.get(f"http://127.0.0.1:{world.port}/health").json()
            assert health["sources"][0]["name"] == "datagov-tenders"
        finally:
            server.terminate()
            server.wait(timeout=30)

    # The tender's title changes at the source: one "updated" alert.
    solar = next(r for r in world.records if "סולאריות" in r["שם הליך"])
    solar["שם הליך"] += " (עדכון)"
    world.source.app = ckan.build_app(world.records)
    world.cli("run-once")
    assert len(world.emails()) == 2
    update = world.emails()[-1]
    body = update.get_body(("plain",))
    assert body is not None
    assert "(עדכון)" in body.get_content()


def test_a_broken_source_is_reported_and_changes_nothing(world: World) -> None:
    world.cli("init")
    world.cli("subscriptions", "import", "subscriptions.toml")
    world.cli("run-once")
    sent = len(world.emails())
    world.source.app = ckan.build_app(world.records, fail="html")
    out = world.cli("run-once").stdout
    assert "FAILED" in out
    assert len(world.emails()) == sent
    check = world.cli("sources", "check", check=False)
    assert check.returncode == 1
    assert "FAIL datagov-tenders" in check.stdout
    # Back to health: nothing was erased, so nothing is "new" again.
    world.source.app = ckan.build_app(world.records)
    world.cli("run-once")
    assert len(world.emails()) == sent
