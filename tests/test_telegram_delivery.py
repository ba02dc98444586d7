"""Telegram delivery's edges: splitting and escaping, flood limits, the webhook, the links.

Real python-telegram-bot against the Bot API fake on loopback; the limiter's
own arithmetic is checked with a clock the test moves.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from agent.config import build_config
from agent.errors import RateLimited
from agent.links import Links, LinkState, Purpose, parse_start
from agent.models import Subscription
from agent.rendering import BUILTIN_TEMPLATES, Renderer
from agent.service import Agent
from agent.web import create_app
from bench import telegram_rate as telegram_bench
from notifiers.base import (
    Message,
    ServiceContext,
    channel_routes,
    start_background,
    stop_background,
)
from notifiers.telegram import MAX_LENGTH, TelegramNotifier
from notifiers.telegram_limits import FloodLimits, Limit
from notifiers.telegram_updates import SECRET_HEADER
from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import telegram
from tests.fakes.telegram_updates import private_message
from tests.samples import alert, item, recipient
from tests.test_web_api_site import serve_here
from tests.user import User, config_text

TOKEN = "123456:TEST-token"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> & <b>bold</b> &amp; </i>'


@pytest.fixture
def bot() -> Iterator[tuple[Starlette, str]]:
    app = telegram.build_app(TOKEN)
    with serve(app) as url:
        yield app, url


def channel(url: str, **limits: float) -> TelegramNotifier:
    return TelegramNotifier(token=SecretStr(TOKEN), base_url=f"{url}/bot", **limits)


@pytest.mark.parametrize("language", ["he", "ar", "en"])
async def test_a_long_digest_splits_between_items_never_inside_a_tag_with_all_text_escaped(
    bot: tuple[Starlette, str], language: str
) -> None:
    app, url = bot
    alerts = [
        alert(
            n,
            subject=item(
                f"{HOSTILE} item {n}.",
                key=f"k-{n}",
                description=f"{HOSTILE} " * 40,
                publisher=HOSTILE,
                url=f"https://x.example/t?a={n}&b=<{n}>",
            ),
        )
        for n in range(40)
    ]
    outs = Renderer(BUILTIN_TEMPLATES).render(
        "telegram", recipient(language, address="-1001"), alerts, now=NOW
    )
    assert len(outs) > 1
    shown = []
    for out in outs:
        body = out.message.html or ""
        assert len(body) <= MAX_LENGTH
        assert "<script>" not in body
        assert "<b>bold</b>" not in body
        shown.append(telegram.visible_text(body))  # raises on an unbalanced or unknown tag
    for n in range(40):
        carrying = [text for text in shown if f"{HOSTILE} item {n}." in text]
        assert len(carrying) == 1, f"item {n} whole in exactly one message"
    assert sorted(i for out in outs for i in out.delivery_ids) == list(range(40))

    app.state.flood_limits = False  # many parts to one chat: the limits are tested below
    async with channel(url, chat_messages_per_second=100, group_messages_per_minute=6000) as tg:
        for out in outs:
            await tg.send(out.message)
    assert len(app.state.sent) == len(outs)
    assert all(sent["parse_mode"] == "HTML" for sent in app.state.sent)


def test_the_limiter_keeps_every_window_within_its_limit() -> None:
    now = [0.0]
    limits = FloodLimits(
        overall=Limit(30, 1.0), per_chat=Limit(1, 1.0), per_group=Limit(20, 60.0),
        clock=lambda: now[0],
    )  # fmt: skip
    # Thirty chats at once: a burst up to the limit goes at once, the 31st waits.
    assert [limits.take(str(chat)).wait for chat in range(1, 31)] == [0.0] * 30
    assert limits.delay("31") == pytest.approx(1.05)
    # One chat: a second apart.
    now[0] = 10.0
    assert limits.take("42").wait == 0.0
    refused = limits.take("42")
    assert refused.wait == pytest.approx(1.05)
    limits.release(refused)  # Telegram answered 429: that message never counted
    assert limits.delay("42") == pytest.approx(1.05)
    assert limits.delay("43") == 0.0
    # One group: twenty, a second apart, then the minute must pass.
    now[0] = 100.0
    waits = []
    for _ in range(21):
        wait = limits.take("-100777").wait
        now[0] += wait
        waits.append(wait)
    assert sum(waits[:20]) == pytest.approx(19 * 1.05)
    assert now[0] == pytest.approx(160.05)  # the 21st: a minute after the first, and the margin


async def test_the_fake_answers_a_flood_with_429_and_retry_after(
    bot: tuple[Starlette, str],
) -> None:
    app, url = bot
    async with httpx.AsyncClient() as http:
        answers = [
            await http.post(f"{url}/bot{TOKEN}/sendMessage", data={"chat_id": "7", "text": "hi"})
            for _ in range(2)
        ]
    assert [a.status_code for a in answers] == [200, 429]
    assert answers[1].json()["parameters"]["retry_after"] >= 1
    assert answers[1].json()["description"].startswith("Too Many Requests: retry after")
    assert app.state.flooded == 1


async def test_our_limits_keep_telegram_from_refusing_and_hand_back_a_long_wait(
    bot: tuple[Starlette, str],
) -> None:
    app, url = bot
    started = time.monotonic()
    async with channel(url, group_messages_per_minute=2) as tg:
        for n in range(3):
            await tg.send(telegram_message("8", n))
        for n in range(2):
            await tg.send(telegram_message("-1008", n))
        with pytest.raises(RateLimited) as caught:
            await tg.send(telegram_message("-1008", 2))
    assert time.monotonic() - started >= 2.0, "one chat: a second apart"
    assert caught.value.retry_after > 50, "the group's minute"
    assert len(app.state.sent) == 5
    assert app.state.flooded == 0


def telegram_message(chat: str, n: int) -> Message:
    return Message(to=chat, subject="", text=f"message {n}", html=f"<b>message {n}</b>")


@dataclass
class Hooked:
    """The service's web app with the bot's webhook route, and the fake."""

    agent: Agent
    bot: Starlette
    site: str


@pytest.fixture
async def hooked(tmp_path: Path, bot: tuple[Starlette, str]) -> AsyncIterator[Hooked]:
    app, url = bot
    config = build_config(
        {
            "agent": {
                "database_url": databases.url(tmp_path),
                "templates_dir": str(ROOT / "templates"),
                "signing_key": "k",
            },
            "notifiers": {
                "telegram": {
                    "token": TOKEN,
                    "base_url": f"{url}/bot",
                    "webhook_url": "https://alerts.example.org/telegram/updates",
                }
            },
        },
        base_dir=tmp_path,
    )
    async with Agent.open(config) as agent:
        context = ServiceContext(agent.db, agent.links, agent.renderer.strings, agent.clock)
        web = create_app(agent, routes=channel_routes(agent.notifiers.values(), context))
        listening = start_background(agent.notifiers.values(), context)
        try:
            # In this event loop, as under ``serve``: the webhook answers with the bot
            # the agent opened here, whose connections belong to this loop.
            async with serve_here(web) as site:
                yield Hooked(agent, app, site)
        finally:
            await stop_background(listening)


async def test_with_a_webhook_telegram_posts_updates_with_its_secret(hooked: Hooked) -> None:
    for _ in range(100):
        if hooked.bot.state.webhook is not None:
            break
        await asyncio.sleep(0.05)
    hook = hooked.bot.state.webhook
    assert hook["url"] == "https://alerts.example.org/telegram/updates"
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", hook["secret"])
    async with httpx.AsyncClient() as http:
        target = f"{hooked.site}/telegram/updates"
        update = {"update_id": 1, **private_message(9001, "/help", language="en")}
        refused = await http.post(target, json=update)
        answered = await http.post(target, json=update, headers={SECRET_HEADER: hook["secret"]})
        garbled = await http.post(target, content=b"{", headers={SECRET_HEADER: hook["secret"]})
    assert (refused.status_code, answered.status_code, garbled.status_code) == (403, 200, 400)
    assert telegram.texts(hooked.bot, 9001) == [hooked.agent.renderer.strings("en")["bot"]["help"]]
    assert "getUpdates" not in hooked.bot.state.calls


def test_a_connect_token_fits_a_deep_link_and_works_only_for_its_purpose() -> None:
    clock = [NOW]
    links = Links("https://alerts.example.org", "key", clock=lambda: clock[0])
    sub = Subscription(name="n", feed_token="f", created_at=NOW, updated_at=NOW)
    token = links.telegram_start(sub)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token)
    parsed = parse_start(token)
    assert links.check(parsed, sub, Purpose.TELEGRAM_CONNECT) is LinkState.VALID
    assert links.check(parsed, sub, Purpose.UNSUBSCRIBE) is LinkState.INVALID
    assert parse_start(links.sign(sub, Purpose.TELEGRAM_CONNECT)) is None, "dots are not allowed"
    tampered = parse_start(token[:22] + str(int(token[22:27]) + 1) + token[27:])
    assert links.check(tampered, sub, Purpose.TELEGRAM_CONNECT) is LinkState.INVALID
    clock[0] = NOW + timedelta(days=31)
    assert links.check(parsed, sub, Purpose.TELEGRAM_CONNECT) is LinkState.EXPIRED
    assert parse_start(token + "0") is None
    assert parse_start("x" * 1000) is None


def test_the_cli_prints_the_deep_links_of_a_subscription(
    tmp_path: Path, bot: tuple[Starlette, str]
) -> None:
    _, url = bot
    telegram_table = f'[notifiers.telegram]\nbase_url = "{url}/bot"\n'
    (tmp_path / "config.toml").write_text(
        config_text(databases.url(tmp_path), telegram_table), encoding="utf-8"
    )
    user = User(tmp_path, env={"SMART_AGENT_NOTIFIERS__TELEGRAM__TOKEN": TOKEN})
    user.run("subscriptions", "add", "team", "-q", "מחשוב", "--channel", "rss")
    out = user.run("subscriptions", "telegram-link", "team").stdout
    start = re.search(r"https://t\.me/smart_agent_test_bot\?start=([A-Za-z0-9_-]+)", out)
    assert start is not None
    assert len(start[1]) <= 64
    assert f"?startgroup={start[1]}" in out
    assert f"/start {start[1]}" in out
    missing = user.run("subscriptions", "telegram-link", "nobody", code=1)
    assert "no subscription 'nobody'" in missing.stderr
    (tmp_path / "config.toml").write_text(config_text(databases.url(tmp_path)), encoding="utf-8")
    off = User(tmp_path).run("subscriptions", "telegram-link", "team", code=1)
    assert "SMART_AGENT_NOTIFIERS__TELEGRAM__TOKEN" in off.stderr


@pytest.mark.sqlite_only("the benchmark keeps its own SQLite file")
def test_the_benchmark_sends_every_alert_once_through_429s() -> None:
    result = telegram_bench.run(40, 10)
    assert (result.messages, result.lost, result.duplicated) == (40, 0, 0)
    assert result.injected >= 3
