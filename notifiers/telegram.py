"""Telegram: one Bot API ``sendMessage`` per message, in HTML parse mode.

The ``Bot`` is opened once per process (``initialize`` calls ``getMe``, so a
bad token fails at start-up) and closed on exit. Telegram's errors become the
agent's: 429 → ``RateLimited``, a blocked bot or a bad chat → permanent, and
HTML Telegram cannot parse is sent once more as plain text.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import timedelta
from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr
from telegram import Bot, LinkPreviewOptions
from telegram import Message as TelegramMessage
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from agent.errors import ConfigError, DeliveryError, PermanentDeliveryError, RateLimited
from notifiers.base import Batching, Layout, Message

logger = logging.getLogger(__name__)

#: Telegram's limit on one message's text; ``agent.rendering`` splits to stay under it.
MAX_LENGTH = 4096

#: A chat id (``-1001234567890``) or a public channel's ``@username``.
_CHAT = re.compile(r"^(-?\d{1,20}|@\w{5,32})$")


class TelegramNotifier(BaseModel):
    """Sends alerts to Telegram chats through a bot (``[notifiers.telegram]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Up to three alerts go out as messages of their own; more are packed as a digest.
    layout: ClassVar[Layout] = Layout(Batching.FIT, max_length=MAX_LENGTH, separate_up_to=3)
    address_field: ClassVar[str | None] = "telegram_chat_id"
    address_option: ClassVar[str | None] = "telegram"
    how_to_enable: ClassVar[str] = (
        "set the bot token in SMART_AGENT_NOTIFIERS__TELEGRAM__TOKEN "
        "(see README, Channels: telegram)"
    )

    #: From ``SMART_AGENT_NOTIFIERS__TELEGRAM__TOKEN``, never the config file.
    token: SecretStr
    #: The Bot API root; the token is appended to it.
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    disable_web_page_preview: bool = True

    _bot: Bot | None = PrivateAttr(default=None)

    @classmethod
    def check_address(cls, address: str) -> str:
        """Check a chat id or ``@channel`` name."""
        if not _CHAT.match(address.strip()):
            raise ValueError("must be a chat id such as -1001234567890, or @channelname")
        return address.strip()

    async def __aenter__(self) -> Self:
        bot = Bot(
            self.token.get_secret_value(),
            base_url=self.base_url,
            base_file_url=self.base_file_url,
        )
        try:
            await bot.initialize()
        except InvalidToken as exc:
            await bot.shutdown()
            raise ConfigError(f"notifiers.telegram.token: {exc.message}") from exc
        except TelegramError as exc:
            await bot.shutdown()
            raise DeliveryError(f"telegram bot could not start: {exc.message}") from exc
        self._bot = bot
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        bot, self._bot = self._bot, None
        if bot is not None:
            await bot.shutdown()

    async def send(self, message: Message) -> str | None:
        """Send ``message`` to chat ``message.to``; return Telegram's message id."""
        body = message.html
        text = message.text or (plain_text(message.html) if message.html else "")
        try:
            sent = await self._send(message.to, body or text, html=body is not None)
        except BadRequest as exc:
            if "can't parse entities" not in exc.message.lower():
                raise PermanentDeliveryError(f"chat {message.to}: {exc.message}") from exc
            # Our HTML should always parse; if it ever does not, plain text still informs.
            logger.warning("chat %s: sending as plain text: %s", message.to, exc.message)
            try:
                sent = await self._send(message.to, text, html=False)
            except BadRequest as again:
                raise PermanentDeliveryError(f"chat {message.to}: {again.message}") from again
        return str(sent.message_id)

    async def _send(self, chat_id: str, text: str, *, html: bool) -> TelegramMessage:
        """Call sendMessage, translating every error but BadRequest (the caller's)."""
        if self._bot is None:
            raise RuntimeError("TelegramNotifier used outside 'async with'")
        try:
            return await self._bot.send_message(
                chat_id,
                text=text,
                parse_mode="HTML" if html else None,
                link_preview_options=LinkPreviewOptions(is_disabled=self.disable_web_page_preview),
            )
        except RetryAfter as exc:
            seconds = _seconds(exc.retry_after)
            raise RateLimited(f"chat {chat_id}: {exc.message}", retry_after=seconds) from exc
        except (Forbidden, InvalidToken) as exc:
            raise PermanentDeliveryError(f"chat {chat_id}: {exc.message}") from exc
        except ChatMigrated as exc:
            why = f"chat {chat_id} moved to {exc.new_chat_id}"
            raise PermanentDeliveryError(why) from exc
        except BadRequest:
            raise
        except TelegramError as exc:  # NetworkError, TimedOut and the rest: try later
            raise DeliveryError(f"chat {chat_id}: {exc.message}") from exc


def plain_text(body: str) -> str:
    """Turn Telegram HTML into plain text: links become ``text (url)``, tags go."""
    linked = re.sub(r'<a href="([^"]*)">(.*?)</a>', r"\2 (\1)", body, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", "", linked))


def _seconds(retry_after: timedelta | int) -> float:
    """Return seconds whether PTB gives a timedelta (PTB_TIMEDELTA=1) or an int."""
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else retry_after
