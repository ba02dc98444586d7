"""``smart-agent serve`` on its own: it polls, retries, tells the truth in /health, delivers.

Nothing here calls ``run-once`` or an inner function: the real ``serve`` runs
as a child process with short intervals against a CKAN fake serving the
recorded tenders, a feed server, an aiosmtpd mail server and the Telegram Bot
API fake, and the test only watches what reaches them. Its stderr must stay
free of warnings and tracebacks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan, feeds, telegram
from tests.fakes.smtp import smtp_in_thread
from tests.service import (
    TELEGRAM_TOKEN,
    Counted,
    Switch,
    free_port,
    get,
    serving,
    smart_agent,
    wait_until,
)

CHAT = "-1001234567890"
SEARCH = "/api/3/action/datastore_search"
FEED = "/real-gov/va.gov_rss_PressRel_2021-12-08.xml"

CONFIG = """
[agent]
database_url = "{database}"
public_url = "http://127.0.0.1:{port}"
templates_dir = "{templates}"
dispatch_every = 1
retry_first = 1

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
every = {every}

[sources.va-press]
kind = "rss"
url = "{feeds}{feed}"
every = 1
enabled = {feed_enabled}

[sources.never]
kind = "rss"
url = "{feeds}/nothing-here.xml"
enabled = false
"""

SUBSCRIPTIONS = """
[[subscriptions]]
name = "solar engineering, for the NGO team"
query = 'סולאריות OR "ליווי וייעוץ"'
kinds = ["tender"]
channels = ["email", "telegram", "rss"]
email = "team@ngo.example"
telegram_chat_id = "-1001234567890"
language = "he"
"""


class Slow:
    """Answers after a delay, so a test can look at the service mid-poll."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


@dataclass
class Site:
    """The fakes ``serve`` talks to, and the user's folder."""

    folder: Path
    source: Switch
    requests: Counted
    feed_requests: Counted
    mail: Any
    bot: Any
    port: int

    def health(self) -> tuple[int, dict[str, Any]] | None:
        """``/health``'s status code and JSON, or ``None`` while it is not up."""
        answer = get(f"http://127.0.0.1:{self.port}/health")
        return None if answer is None else (answer.status_code, answer.json())


@pytest.fixture
def site(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Site]:
    """Write the config for ``serve``; ``request.param`` is (every, feed enabled, app)."""
    every, feed_enabled, app = request.param
    source = Switch(app)
    requests, feed_requests = Counted(source), Counted(feeds.app)
    bot = telegram.build_app(TELEGRAM_TOKEN)
    with (
        serve(requests) as source_url,
        serve(feed_requests) as feeds_url,
        serve(bot) as bot_url,
        smtp_in_thread() as mail,
    ):
        port = free_port()
        config = CONFIG.format(
            database=databases.url(tmp_path),
            port=port,
            templates=ROOT / "templates",
            smtp_port=mail.port,
            bot=bot_url,
            source=source_url,
            every=every,
            feeds=feeds_url,
            feed=FEED,
            feed_enabled=str(feed_enabled).lower(),
        )
        (tmp_path / "config.toml").write_text(config, encoding="utf-8")
        (tmp_path / "subscriptions.toml").write_text(SUBSCRIPTIONS, encoding="utf-8")
        smart_agent(tmp_path, "init")
        smart_agent(tmp_path, "subscriptions", "import", "subscriptions.toml")
        yield Site(tmp_path, source, requests, feed_requests, mail, bot, port)


def _without_solar() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    records = ckan.real_records()
    return [r for r in records if "סולאריות" not in r["שם הליך"]], records


BEFORE, AFTER = _without_solar()


@pytest.mark.parametrize("site", [(1, True, ckan.build_app(BEFORE))], indirect=True)
def test_serve_polls_every_source_again_and_again_and_delivers_new_items(site: Site) -> None:
    with serving(site.folder) as log:
        wait_until(lambda: site.requests.paths[SEARCH] >= 3, what="three polls of CKAN")
        wait_until(lambda: site.feed_requests.paths[FEED] >= 3, what="three polls of the feed")
        wait_until(lambda: (h := site.health()) is not None and h[0] == 200, what="health ok")
        assert "2 enabled sources scheduled (of 3)" in log()
        assert not site.mail.messages, "the first poll is a silent baseline"

        # A new tender appears at the source: serve alone finds it and sends it everywhere.
        site.source.app = ckan.build_app(AFTER)
        wait_until(lambda: site.mail.messages, what="the e-mail")
        wait_until(lambda: site.bot.state.sent, what="the Telegram message")
        feed_url = f"http://127.0.0.1:{site.port}/feeds/{_feed_token(site.folder)}.xml"
        wait_until(lambda: _feed_titles(feed_url), what="the feed entry")
        titles = _feed_titles(feed_url)

        polls = site.requests.paths[SEARCH]
        wait_until(lambda: site.requests.paths[SEARCH] >= polls + 2, what="two more polls")
    [mail] = site.mail.messages
    assert mail["To"] == "team@ngo.example"
    assert "סולאריות" in str(mail["Subject"]) + mail.get_body(("plain",)).get_content()
    [message] = site.bot.state.sent
    assert message["chat_id"] == CHAT
    assert "סולאריות" in message["text"]
    assert any("סולאריות" in title for title in titles)


@pytest.mark.parametrize(
    "site", [('"PT1H"', False, Slow(ckan.build_app(fail="500"), 3.0))], indirect=True
)
def test_a_failing_source_is_retried_sooner_than_its_interval_and_recovers(site: Site) -> None:
    with serving(site.folder):
        # Mid-way through the first poll nothing has been polled: never "ok".
        wait_until(lambda: site.health() is not None, what="the HTTP server")
        code, health = site.health() or (0, {})
        assert (code, health["status"], health["pending"]) == (503, "starting", ["datagov-tenders"])
        [state] = [s for s in health["sources"] if s["name"] == "datagov-tenders"]
        assert state["status"] == "pending"

        wait_until(lambda: site.requests.paths[SEARCH] >= 1, what="the first poll")
        wait_until(lambda: (site.health() or (0, {}))[1].get("failing"), what="failing")
        code, health = site.health() or (0, {})
        assert (code, health["status"]) == (503, "degraded")
        assert "HTTP 500" in health["sources"][0]["last_error"]

        # The interval is an hour: only retries can ask again within seconds.
        site.source.app = ckan.build_app(fail="500")
        wait_until(lambda: site.requests.paths[SEARCH] >= 2, what="a retry", timeout=20)
        site.source.app = ckan.build_app()
        wait_until(lambda: (site.health() or (0, {}))[0] == 200, what="recovery", timeout=30)
    assert site.health() is None, "serve stopped on SIGTERM"


def _feed_token(folder: Path) -> str:
    listed = smart_agent(folder, "subscriptions", "list", "--json").stdout
    line = next(line for line in listed.splitlines() if '"feed_url"' in line)
    return line.split('"')[3].rsplit("/", 1)[1].removesuffix(".xml")


def _feed_titles(url: str) -> list[str]:
    answer = get(url)
    if answer is None or answer.status_code != 200:
        return []
    return [entry.title for entry in feedparser.parse(answer.content).entries]
