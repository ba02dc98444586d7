"""How the bot hears people: long polling (the default) or a webhook.

Polling calls ``getUpdates`` with a long-poll timeout, and the offset after
the last update handled, which confirms it to Telegram; on shutdown the
handled ones are confirmed, so a restart does not answer them again. A webhook
(``[notifiers.telegram] webhook_url``) is registered with a secret that
Telegram sends back in ``X-Telegram-Bot-Api-Secret-Token``; a POST without it
is refused. Either way each update goes to ``notifiers.telegram_bot``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from telegram import Bot, BotCommand, Update
from telegram.error import Conflict, Forbidden, InvalidToken, RetryAfter, TelegramError

from agent import i18n
from notifiers.base import ServiceContext
from notifiers.telegram_bot import Command, Conversation

if TYPE_CHECKING:
    from notifiers.telegram import TelegramNotifier

logger = logging.getLogger(__name__)

#: The updates the bot acts on; Telegram sends no others.
ALLOWED_UPDATES = ("message", "channel_post", "my_chat_member")
#: Seconds Telegram holds a ``getUpdates`` open when there is nothing new.
POLL_TIMEOUT = 50
#: After a failed ``getUpdates``: the first pause, doubling up to the cap.
PAUSE, PAUSE_CAP = 1.0, 60.0
#: The header Telegram sends the webhook's secret in.
SECRET_HEADER = "x-telegram-bot-api-secret-token"


async def run(notifier: TelegramNotifier, context: ServiceContext) -> None:
    """Set the commands menu, then poll until cancelled, or register the webhook.

    Telegram out of reach at that moment (a network error, a 5xx, a 429) is
    waited out with backoff: giving up would leave the bot deaf for the life of
    the process. Only a refusal that will not change (a wrong token) stops it.
    """
    pause = PAUSE
    while True:
        try:
            await _start_listening(notifier, context)
            break
        except (InvalidToken, Forbidden) as exc:
            logger.error("telegram: the bot cannot listen: %s", exc.message)
            return
        except RetryAfter as exc:
            await asyncio.sleep(_seconds(exc))
        except TelegramError as exc:
            logger.warning("telegram: cannot start listening (%s); again in %.0f s", exc, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, PAUSE_CAP)
    if not notifier.webhook_url:
        await poll(notifier.bot, Conversation(notifier, context))


async def _start_listening(notifier: TelegramNotifier, context: ServiceContext) -> None:
    bot = notifier.bot
    await set_commands(bot, context)
    if notifier.webhook_url:
        await bot.set_webhook(
            notifier.webhook_url,
            secret_token=webhook_secret(notifier),
            allowed_updates=ALLOWED_UPDATES,
        )
        logger.info("telegram: updates come to the webhook %s", notifier.webhook_url)
        return
    # Telegram refuses getUpdates while a webhook is set (409).
    await bot.delete_webhook()


async def poll(bot: Bot, conversation: Conversation, *, long_poll: int = POLL_TIMEOUT) -> None:
    """Hand every update to ``conversation``, in order, until cancelled."""
    offset: int | None = None
    pause = PAUSE
    try:
        while True:
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=long_poll, allowed_updates=ALLOWED_UPDATES
                )
            except (InvalidToken, Forbidden) as exc:
                logger.error("telegram: polling stopped: %s", exc.message)
                return
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc))
                continue
            except TelegramError as exc:  # the network, Telegram, or a webhook (Conflict)
                why = "another poller or a webhook" if isinstance(exc, Conflict) else exc.message
                logger.warning("telegram: getUpdates failed (%s); again in %.0f s", why, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, PAUSE_CAP)
                continue
            pause = PAUSE
            for update in updates:
                offset = update.update_id + 1
                await conversation.handle(update)
    finally:
        if offset is not None:
            await _confirm(bot, offset)


async def _confirm(bot: Bot, offset: int) -> None:
    """Tell Telegram every update before ``offset`` was handled (quickly, or not at all)."""
    with contextlib.suppress(TelegramError, TimeoutError):
        await asyncio.wait_for(bot.get_updates(offset=offset, timeout=0, limit=1), 5)


def webhook_routes(notifier: TelegramNotifier, context: ServiceContext) -> Sequence[BaseRoute]:
    """The route Telegram posts updates to, at ``webhook_url``'s path (none when polling)."""
    if not notifier.webhook_url:
        return []
    conversation = Conversation(notifier, context)
    secret = webhook_secret(notifier)

    async def receive(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return Response("forbidden", status_code=403, media_type="text/plain")
        try:
            update = Update.de_json(await request.json(), notifier.bot)
        except (ValueError, TypeError, KeyError, AttributeError):
            return Response("not an update", status_code=400, media_type="text/plain")
        await conversation.handle(update)
        return Response(status_code=200)

    path = urlsplit(notifier.webhook_url).path or "/"
    return [Route(path, receive, methods=["POST"])]


def webhook_secret(notifier: TelegramNotifier) -> str:
    """The webhook's secret, derived from the bot token (Telegram allows ``[A-Za-z0-9_-]``)."""
    key = notifier.token.get_secret_value().encode()
    return hmac.new(key, b"smart-agent webhook", hashlib.sha256).hexdigest()


async def set_commands(bot: Bot, context: ServiceContext) -> None:
    """Show the commands, described in each language, in the chat's menu."""
    for language in (None, *i18n.LANGUAGES):
        strings = context.strings(language or i18n.LANGUAGES[0])["bot"]["commands"]
        commands = [BotCommand(c.value, strings[c.value]) for c in Command if c in strings]
        await bot.set_my_commands(commands, language_code=language)


def _seconds(exc: RetryAfter) -> float:
    wait = exc.retry_after
    return wait if isinstance(wait, int | float) else wait.total_seconds()
