"""Telegram: one Bot API ``sendMessage`` per message, in HTML parse mode, and the bot.

The ``Bot`` is opened once per process (``initialize`` calls ``getMe``, so a
bad token fails at start-up) and closed on exit. Every message waits its turn
under Telegram's flood limits (``notifiers.telegram_limits``); one that would
wait long is handed back as ``RateLimited``, so the dispatcher goes on with
other chats. Telegram's errors become the agent's: 429 → ``RateLimited`` (the
outbox waits ``retry_after``), a bot blocked or removed (403) →
``AddressRejected``, which suppresses the chat until ``/start`` or ``/resume``,
and HTML Telegram cannot parse is sent once more as plain text. Under
``serve`` the bot also talks with people (``notifiers.telegram_bot``).
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr
from telegram import Bot, LinkPreviewOptions
from telegram import Message as TelegramMessage
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

from agent.errors import (
    AddressRejected,
    ChannelUnavailable,
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    RateLimited,
)
from notifiers.base import Batching, Layout, Message, ServiceContext, Verification
from notifiers.telegram_limits import FloodLimits, Limit

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

logger = logging.getLogger(__name__)

#: Telegram's limit on one message's text; ``agent.rendering`` splits to stay under it.
MAX_LENGTH = 4096

#: A chat id (``-1001234567890``) or a public channel's ``@username``.
_CHAT = re.compile(r"^(-?\d{1,20}|@\w{5,32})$")

#: A message that would wait longer than this for its slot goes back to the outbox,
#: so one busy group does not hold up every other chat.
MAX_WAIT = 1.5

#: Concurrent requests: the dispatcher's sends and the bot's replies share the bot.
POOL_SIZE = 8


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
    # A chat id is never typed on the web: the chat says /start <token> to the bot itself.
    verification: ClassVar[Verification] = Verification.CONNECT
    address_input: ClassVar[str | None] = None

    #: From ``SMART_AGENT_NOTIFIERS__TELEGRAM__TOKEN``, never the config file.
    token: SecretStr
    #: The Bot API root; the token is appended to it.
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    disable_web_page_preview: bool = True
    #: Telegram posts updates here (``https://…/telegram/…``); unset, the bot polls.
    webhook_url: str | None = None
    #: Telegram's flood limits (its Bot FAQ): they vary per bot and are not promised.
    messages_per_second: float = Field(default=30, gt=0)
    chat_messages_per_second: float = Field(default=1, gt=0)
    group_messages_per_minute: float = Field(default=20, gt=0)

    _bot: Bot | None = PrivateAttr(default=None)
    _limits: FloodLimits = PrivateAttr()

    def model_post_init(self, context: object, /) -> None:
        """Keep the configured limits for this bot and process."""
        self._limits = FloodLimits(
            overall=_limit(self.messages_per_second, 1.0),
            per_chat=_limit(self.chat_messages_per_second, 1.0),
            per_group=_limit(self.group_messages_per_minute, 60.0),
        )

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
            request=HTTPXRequest(connection_pool_size=POOL_SIZE),
            get_updates_request=HTTPXRequest(connection_pool_size=1),
        )
        try:
            await bot.initialize()
        except InvalidToken as exc:
            await bot.shutdown()
            # python-telegram-bot's message quotes the token itself: never repeat it.
            raise ConfigError("notifiers.telegram.token: Telegram refused it") from exc
        except TelegramError as exc:
            await bot.shutdown()
            why = exc.message.replace(self.token.get_secret_value(), "<token>")
            raise DeliveryError(f"telegram bot could not start: {why}") from exc
        self._bot = bot
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        bot, self._bot = self._bot, None
        if bot is not None:
            await bot.shutdown()

    @property
    def bot(self) -> Bot:
        """The opened bot."""
        if self._bot is None:
            raise RuntimeError("TelegramNotifier used outside 'async with'")
        return self._bot

    @property
    def username(self) -> str:
        """The bot's ``@username`` without the ``@``, as ``getMe`` gave it."""
        return self.bot.username

    def connect_links(self, token: str) -> dict[str, str]:
        """The bot's deep links that connect a private chat or a group with ``token``."""
        base = f"https://t.me/{self.username}"
        return {"private": f"{base}?start={token}", "group": f"{base}?startgroup={token}"}

    async def background(self, context: ServiceContext) -> None:
        """Talk with people: poll for updates, or register the webhook (until cancelled)."""
        # Imported here: the conversation needs the agent's core, which imports notifiers.
        from notifiers.telegram_updates import run

        await run(self, context)

    def routes(self, context: ServiceContext) -> Sequence[BaseRoute]:
        """The webhook's route, when ``webhook_url`` is set."""
        from notifiers.telegram_updates import webhook_routes

        return webhook_routes(self, context)

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
        """Call sendMessage in its turn, translating every error but BadRequest (the caller's)."""
        bot = self.bot
        wait = self._limits.delay(chat_id)
        if wait > MAX_WAIT:
            why = f"chat {chat_id}: Telegram's flood limits allow the next message in {wait:.0f} s"
            raise RateLimited(why, retry_after=wait)
        slot = self._limits.take(chat_id)
        await asyncio.sleep(slot.wait)
        try:
            sent = await bot.send_message(
                chat_id,
                text=text,
                parse_mode="HTML" if html else None,
                link_preview_options=LinkPreviewOptions(is_disabled=self.disable_web_page_preview),
            )
            self._limits.settle(slot)
            return sent
        except RetryAfter as exc:
            self._limits.release(slot)
            seconds = _seconds(exc.retry_after)
            raise RateLimited(f"chat {chat_id}: {exc.message}", retry_after=seconds) from exc
        except Forbidden as exc:  # blocked, removed from the group, no right to post
            raise AddressRejected(f"chat {chat_id}: {exc.message}") from exc
        except InvalidToken as exc:
            raise PermanentDeliveryError(f"chat {chat_id}: {exc.message}") from exc
        except ChatMigrated as exc:
            why = f"chat {chat_id} moved to {exc.new_chat_id}"
            raise PermanentDeliveryError(why) from exc
        except BadRequest:
            raise
        except NetworkError as exc:  # TimedOut too: Telegram cannot be reached by anyone now
            raise ChannelUnavailable(f"chat {chat_id}: {exc.message}") from exc
        except TelegramError as exc:  # the rest: try later
            raise DeliveryError(f"chat {chat_id}: {exc.message}") from exc


def plain_text(body: str) -> str:
    """Turn Telegram HTML into plain text: links become ``text (url)``, tags go."""
    linked = re.sub(r'<a href="([^"]*)">(.*?)</a>', r"\2 (\1)", body, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", "", linked))


def _seconds(retry_after: timedelta | int) -> float:
    """Return seconds whether PTB gives a timedelta (PTB_TIMEDELTA=1) or an int."""
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else retry_after


def _limit(count: float, period: float) -> Limit:
    """``count`` messages per ``period`` seconds, in whole messages (0.5 a second: 1 in 2 s)."""
    return Limit(round(count), period) if count >= 1 else Limit(1, period / count)
