"""Telegram through a Bot API fake on loopback: python-telegram-bot speaks real HTTP to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from agent.errors import ConfigError, DeliveryError, PermanentDeliveryError, RateLimited
from agent.rendering import BUILTIN_TEMPLATES, Renderer
from notifiers import Notifiers
from notifiers.base import Message
from notifiers.telegram import TelegramNotifier, plain_text
from tests.conftest import NOW, serve
from tests.fakes import telegram
from tests.samples import ARABIC_TITLE, ENGLISH_TITLE, HEBREW_TITLE, alert, item, recipient

TOKEN = "123456:TEST-token"
CHAT = "-1001234567890"


@pytest.fixture
def bot() -> Iterator[tuple[Starlette, str]]:
    app = telegram.build_app(TOKEN)
    with serve(app) as url:
        yield app, url


def channel(url: str, token: str = TOKEN) -> TelegramNotifier:
    return TelegramNotifier(token=SecretStr(token), base_url=f"{url}/bot")


def rendered(title: str = HEBREW_TITLE, language: str = "he") -> Message:
    renderer = Renderer(BUILTIN_TEMPLATES)
    who = recipient(language, address=CHAT)
    [out] = renderer.render("telegram", who, [alert(subject=item(title))], now=NOW)
    return out.message


@pytest.mark.parametrize(
    ("title", "language"),
    [
        pytest.param(HEBREW_TITLE, "he", id="hebrew"),
        pytest.param(ARABIC_TITLE, "ar", id="arabic"),
        pytest.param(ENGLISH_TITLE, "en", id="english"),
    ],
)
async def test_an_alert_is_sent_as_html_and_returns_telegrams_message_id(
    bot: tuple[Starlette, str], title: str, language: str
) -> None:
    app, url = bot
    async with channel(url) as tg:
        receipt = await tg.send(rendered(title, language))
    assert receipt == "1"
    [sent] = app.state.sent
    assert sent["chat_id"] == CHAT
    assert sent["parse_mode"] == "HTML"
    assert title in sent["text"]
    assert '"is_disabled": true' in sent["link_preview_options"]


async def test_a_rate_limit_says_how_long_to_wait(bot: tuple[Starlette, str]) -> None:
    app, url = bot
    app.state.failures.append("rate_limit")
    async with channel(url) as tg:
        with pytest.raises(RateLimited) as caught:
            await tg.send(rendered())
    assert caught.value.retry_after == 30
    assert caught.value.retryable
    assert app.state.sent == []


async def test_a_blocked_bot_is_a_permanent_failure(bot: tuple[Starlette, str]) -> None:
    app, url = bot
    app.state.failures.append("blocked")
    async with channel(url) as tg:
        with pytest.raises(PermanentDeliveryError, match="blocked"):
            await tg.send(rendered())


async def test_an_unknown_chat_is_a_permanent_failure(bot: tuple[Starlette, str]) -> None:
    app, url = bot
    app.state.failures.append("chat_not_found")
    async with channel(url) as tg:
        with pytest.raises(PermanentDeliveryError, match=r"(?i)chat not found"):
            await tg.send(rendered())


async def test_html_telegram_cannot_parse_is_sent_again_as_plain_text(
    bot: tuple[Starlette, str],
) -> None:
    app, url = bot
    app.state.failures.append("parse")
    message = rendered()
    async with channel(url) as tg:
        receipt = await tg.send(message)
    [sent] = app.state.sent
    assert receipt == "1"
    assert "parse_mode" not in sent
    assert sent["text"] == plain_text(message.html or "")
    assert HEBREW_TITLE in sent["text"]
    assert "<b>" not in sent["text"]


async def test_html_that_breaks_telegrams_rules_is_refused_by_the_fake_then_sent_plain(
    bot: tuple[Starlette, str],
) -> None:
    app, url = bot
    broken = Message(to=CHAT, subject="", text="מכרז <חדש>", html="<b>מכרז <חדש></b>")
    async with channel(url) as tg:
        await tg.send(broken)
    assert [sent["text"] for sent in app.state.sent] == ["מכרז <חדש>"]


async def test_a_server_error_is_a_failure_to_retry(bot: tuple[Starlette, str]) -> None:
    app, url = bot
    app.state.failures.append("server_error")
    async with channel(url) as tg:
        with pytest.raises(DeliveryError) as caught:
            await tg.send(rendered())
    assert caught.value.retryable


async def test_a_wrong_token_fails_when_the_channel_opens(bot: tuple[Starlette, str]) -> None:
    _, url = bot
    with pytest.raises(ConfigError, match="token"):
        async with channel(url, token="999:wrong"):
            pass


async def test_a_long_digest_is_accepted_by_telegram_message_by_message(
    bot: tuple[Starlette, str],
) -> None:
    app, url = bot
    alerts = [
        alert(n, subject=item(f"{HEBREW_TITLE} {n}", key=f"t-{n}", description="פירוט " * 80))
        for n in range(30)
    ]
    outs = Renderer(BUILTIN_TEMPLATES).render("telegram", recipient(address=CHAT), alerts, now=NOW)
    async with channel(url) as tg:
        receipts = [await tg.send(out.message) for out in outs]
    assert len(receipts) == len(outs) > 1
    assert len(app.state.sent) == len(outs), "every part parsed and fitted Telegram's limits"


def test_telegram_is_off_until_a_token_is_configured() -> None:
    assert "telegram" not in Notifiers().enabled()
    configured = Notifiers.model_validate({"telegram": {"token": TOKEN}})
    assert "telegram" in configured.enabled()
