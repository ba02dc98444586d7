"""End to end, as a user drives it: real tenders become an e-mail, a Telegram message
and a feed entry; a second run sends nothing; a changed tender sends an update.

Everything is real and runs on loopback: the ``smart-agent`` command in a child
process, a CKAN server with the recorded tenders, an aiosmtpd mail server, a
Telegram Bot API fake, the run's database (``tests.databases``), and
``smart-agent serve``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest

from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan, telegram
from tests.fakes.smtp import smtp_in_thread
from tests.service import (
    TELEGRAM_TOKEN,
    Switch,
    free_port,
    get,
    serving,
    smart_agent,
    wait_until,
)

CHAT = "-1001234567890"


@dataclass
class World:
    """The running servers and the user's folder."""

    folder: Path
    source: Switch
    records: list[dict[str, str]]
    mail: Any
    bot: Any
    port: int

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``smart-agent`` the way a user does, in the user's folder; stderr stays clean."""
        return smart_agent(self.folder, *args, check=check)

    def emails(self) -> list[EmailMessage]:
        return list(self.mail.messages)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    records = ckan.real_records()
    source = Switch(ckan.build_app(records))
    bot = telegram.build_app(TELEGRAM_TOKEN)
    with serve(source) as source_url, serve(bot) as bot_url, smtp_in_thread() as mail:
        port = free_port()
        (tmp_path / "config.toml").write_text(
            CONFIG.format(
                database=databases.url(tmp_path),
                source=source_url,
                bot=bot_url,
                smtp_port=mail.port,
                port=port,
            ),
            encoding="utf-8",
        )
        (tmp_path / "subscriptions.toml").write_text(SUBSCRIPTIONS, encoding="utf-8")
        yield World(tmp_path, source, records, mail, bot, port)


CONFIG = """
[agent]
database_url = "{database}"
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
    [message] = world.bot.state.sent
    assert message["chat_id"] == CHAT
    assert "סולאריות" in message["text"]

    # The same data again: nothing new is sent anywhere.
    world.cli("run-once")
    assert len(world.emails()) == 1
    assert len(world.bot.state.sent) == 1

    # The feed, as a reader fetches it from the running service.
    listed = world.cli("subscriptions", "list", "--json").stdout
    feed_url = next(line.split('"')[3] for line in listed.splitlines() if '"feed_url"' in line)
    health_url = f"http://127.0.0.1:{world.port}/health"
    with serving(world.folder):
        wait_until(lambda: get(health_url) is not None, timeout=90, what="the HTTP server")
        feed = feedparser.parse(httpx.get(feed_url).content)
        health = httpx.get(health_url).json()
    assert [entry.title for entry in feed.entries if "סולאריות" in entry.title]
    assert [source["name"] for source in health["sources"]] == ["datagov-tenders"]

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
    assert sent == 1
    world.source.app = ckan.build_app(world.records, fail="html")
    failed = world.cli("run-once", check=False)
    assert failed.returncode == 1, "cron sees a failed source"
    assert "FAILED" in failed.stdout
    assert len(world.emails()) == sent
    check = world.cli("sources", "check", check=False)
    assert check.returncode == 1
    assert "FAIL datagov-tenders" in check.stdout
    # Back to health: nothing was erased, so nothing is "new" again.
    world.source.app = ckan.build_app(world.records)
    world.cli("run-once")
    assert len(world.emails()) == sent
