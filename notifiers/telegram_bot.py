"""The Telegram bot's conversation: chats connect themselves, and steer their alerts.

* ``/start <token>``: the subscription's deep link (``t.me/<bot>?start=<token>``,
  ``?startgroup=<token>`` for a group; in a channel an admin posts it) connects
  the chat: its alerts go there, and any suppression of the chat is lifted;
  a subscription made on the web for this (awaiting its chat) is turned on.
  ``/start`` alone in a connected chat (what Telegram sends when a user
  unblocks the bot) resumes it.
* ``/list``: the subscriptions connected to this chat.
* ``/mute``: alerts for the chat are held (suppressed, reason ``MUTED``), not lost.
* ``/resume``: the suppression is lifted and the held alerts are sent.
* ``/stop``: the chat is disconnected; what was queued for it is cancelled.
* ``/help``: the commands.

Replies are in the language of the chat's subscriptions (else the user's),
HTML with every text escaped. In a group only its administrators may mute,
resume or stop it. The bot being blocked or removed (``my_chat_member``) suppresses
the chat, as a 403 on sending does. Updates come by long polling or by the
webhook (``notifiers.telegram_updates``).
"""

from __future__ import annotations

import asyncio
import html
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select
from telegram import ChatMemberUpdated, Update
from telegram import Message as TelegramMessage
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError

from agent import i18n, outbox, subscriptions
from agent.errors import DeliveryError, RateLimited
from agent.links import LinkState, Purpose, parse_start
from agent.models import Delivery, DeliveryStatus, Subscription
from notifiers.base import Message, ServiceContext
from notifiers.telegram import plain_text

if TYPE_CHECKING:
    from notifiers.telegram import TelegramNotifier

logger = logging.getLogger(__name__)

#: The channel this bot serves, as the registry names it.
CHANNEL = "telegram"
#: The suppression reason of a chat that said /mute.
MUTED = "muted in the chat"
#: How long a reply may wait for Telegram's ``retry_after`` before it is given up.
REPLY_PATIENCE = 5.0


class Command(StrEnum):
    """What a chat can say to the bot."""

    START = "start"
    LIST = "list"
    MUTE = "mute"
    RESUME = "resume"
    STOP = "stop"
    HELP = "help"


#: Commands that change a group's alerts: only its administrators may give them
#: (``/start`` with a token too may be given by anyone: it adds, and proves the owner).
ADMIN_ONLY = frozenset({Command.START, Command.MUTE, Command.RESUME, Command.STOP})
_GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)


@dataclass(frozen=True)
class Said:
    """A command as a chat gave it."""

    chat_id: str
    command: Command
    argument: str
    #: The sender's Telegram language (``he``, ``en-US``), for chats not yet connected.
    language_code: str | None


class Conversation:
    """Answers commands, with the service's database, links and strings."""

    def __init__(self, notifier: TelegramNotifier, context: ServiceContext) -> None:
        self.notifier, self.context = notifier, context

    async def handle(self, update: Update) -> None:
        """Act on one update and answer it; one bad update never stops the others."""
        try:
            await self._handle(update)
        except Exception:  # a bug, or the database: log it and go on with the next update
            logger.exception("telegram: update %d could not be handled", update.update_id)

    async def _handle(self, update: Update) -> None:
        if update.my_chat_member is not None:
            self._membership(update.my_chat_member)
            return
        message = update.message or update.channel_post
        if message is None:
            return
        if message.migrate_to_chat_id is not None:
            self._migrate(str(message.chat.id), str(message.migrate_to_chat_id))
            return
        said = self._parse(message)
        if said is None:
            return
        # A token proves the subscription is the sender's: it only adds alerts to the chat.
        own = said.command is Command.START and bool(said.argument)
        if said.command in ADMIN_ONLY and not own and not await self._may_change(message):
            with Session(self.context.db) as session:
                subs = connected(session, said.chat_id)
            language = subs[0].language if subs else None
            await self.reply(said.chat_id, self._text(said, "admins_only", language=language))
            return
        await self.reply(said.chat_id, self.answer(said))

    def answer(self, said: Said) -> str:
        """Do what ``said`` asks and return the reply (HTML)."""
        with Session(self.context.db) as session:
            if said.command is Command.START and said.argument:
                text = self._connect(session, said)
            else:
                text = self._command(session, said)
            session.commit()
        return text

    async def reply(self, chat_id: str, body: str) -> None:
        """Send a reply; wait out a short rate limit, give up (logged) otherwise."""
        message = Message(to=chat_id, subject="", text=plain_text(body), html=body)
        for _ in range(2):
            try:
                await self.notifier.send(message)
                return
            except RateLimited as exc:
                if exc.retry_after > REPLY_PATIENCE:
                    break
                await asyncio.sleep(exc.retry_after)
            except DeliveryError as exc:
                logger.warning("telegram: could not answer chat %s: %s", chat_id, exc)
                return
        logger.warning("telegram: gave up answering chat %s: rate limited", chat_id)

    def _connect(self, session: Session, said: Said) -> str:
        token = parse_start(said.argument)
        sub = _by_public_id(session, token.public_id) if token is not None else None
        state = self.context.links.check(token, sub, Purpose.TELEGRAM_CONNECT)
        if sub is None or state is not LinkState.VALID:
            key = "link_expired" if state is LinkState.EXPIRED else "link_invalid"
            return self._text(said, key, language=sub.language if sub else None)
        subscriptions.connect(session, sub, CHANNEL, said.chat_id, now=self.context.clock())
        if sub.awaiting_confirmation:
            # Made on the web to be connected here: the chat holding its link is the proof.
            subscriptions.confirm(session, sub, now=self.context.clock())
        session.flush()
        self._resume(session, said.chat_id)
        strings = self._strings(sub.language)
        connected = _fill(strings["connected"], subscription=_name(sub))
        return f"{connected}\n\n{_escape(strings['help'])}"

    def _command(self, session: Session, said: Said) -> str:
        subs = connected(session, said.chat_id)
        language = subs[0].language if subs else None
        if said.command is Command.HELP:
            return self._text(said, "help", language=language)
        if not subs:
            key = "welcome" if said.command is Command.START else "not_connected"
            return self._text(said, key)
        if said.command is Command.LIST:
            return self._list(session, said, subs)
        if said.command is Command.MUTE:
            outbox.suppress(session, CHANNEL, said.chat_id, reason=MUTED, now=self.context.clock())
            return self._text(said, "muted", language=language)
        if said.command is Command.STOP:
            for sub in subs:
                subscriptions.disconnect(session, sub, CHANNEL, now=self.context.clock())
                outbox.cancel_channel(session, sub.id or 0, CHANNEL, reason="stopped in the chat")
            names = ", ".join(_name(sub) for sub in subs)
            return _fill(self._strings(language)["stopped"], subscriptions=names)
        count = self._resume(session, said.chat_id)  # /start alone, /resume
        key = "welcome_back" if said.command is Command.START else "resumed"
        return _fill(self._strings(language)[key], count=str(count))

    def _list(self, session: Session, said: Said, subs: list[Subscription]) -> str:
        strings = self._strings(subs[0].language)
        held = outbox.suppression(session, CHANNEL, said.chat_id) is not None
        lines = [f"<b>{_escape(strings['list_heading'])}</b>"]
        for sub in subs:
            cadence = strings["cadence"].get(sub.cadence, sub.cadence)
            lines.append(f"• {_name(sub)} — {_escape(cadence)}")
        if held:
            lines.append(f"\n<i>{_escape(strings['held'])}</i> · /resume")
        return "\n".join(lines)

    def _resume(self, session: Session, chat_id: str) -> int:
        """Lift the chat's suppression and put its held alerts back in the queue."""
        now = self.context.clock()
        outbox.lift(session, CHANNEL, chat_id, now=now)
        ids = [sub.id for sub in connected(session, chat_id) if sub.id is not None]
        held = select(Delivery.id).where(
            col(Delivery.subscription_id).in_(ids),
            Delivery.channel == CHANNEL,
            Delivery.status == DeliveryStatus.SUPPRESSED,
        )
        return outbox.replay(session, [i for i in session.exec(held) if i is not None], now=now)

    def _membership(self, change: ChatMemberUpdated) -> None:
        """The bot was blocked, or removed from a group: suppress the chat, if it is connected."""
        status = change.new_chat_member.status
        if status not in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT):
            return  # added back: the chat says /start to be sent to again
        chat_id = str(change.chat.id)
        private = change.chat.type == ChatType.PRIVATE
        reason = "bot was blocked by the user" if private else f"bot was removed ({status})"
        with Session(self.context.db) as session:
            if connected(session, chat_id):
                outbox.suppress(session, CHANNEL, chat_id, reason=reason, now=self.context.clock())
                session.commit()
                logger.info("telegram: chat %s suppressed: %s", chat_id, reason)

    def _migrate(self, old: str, new: str) -> None:
        """A group became a supergroup, with a new id: its subscriptions follow it."""
        with Session(self.context.db) as session:
            for sub in connected(session, old):
                subscriptions.connect(session, sub, CHANNEL, new, now=self.context.clock())
            session.commit()

    def _parse(self, message: TelegramMessage) -> Said | None:
        """The command in ``message``, if it is one for this bot."""
        text = (message.text or "").strip()
        if not text.startswith("/"):
            return None
        head, _, argument = text.partition(" ")
        name, _, bot = head[1:].partition("@")
        if bot and bot.lower() != self.notifier.username.lower():
            return None  # a command for another bot in the group
        user = message.from_user
        language = user.language_code if user is not None else None
        chat_id = str(message.chat.id)
        try:
            command = Command(name.lower())
        except ValueError:
            if message.chat.type != ChatType.PRIVATE:
                return None  # groups hear other bots' commands too
            command = Command.HELP
        return Said(chat_id, command, argument.strip(), language)

    async def _may_change(self, message: TelegramMessage) -> bool:
        """Whether the sender may change the chat's alerts: anyone but a group's non-admins."""
        if message.chat.type not in _GROUPS:
            return True  # a private chat is the user's own; only admins post in a channel
        if message.sender_chat is not None and message.sender_chat.id == message.chat.id:
            return True  # an anonymous administrator
        if message.from_user is None:
            return False
        try:
            member = await self.notifier.bot.get_chat_member(message.chat.id, message.from_user.id)
        except TelegramError as exc:
            logger.warning("telegram: cannot check the admins of %s: %s", message.chat.id, exc)
            return False
        return member.status in (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR)

    def _strings(self, language: str | None) -> Any:
        return self.context.strings(i18n.language_of(language))["bot"]

    def _text(self, said: Said, key: str, *, language: str | None = None) -> str:
        return _escape(self._strings(language or said.language_code)[key])


def connected(session: Session, chat_id: str) -> list[Subscription]:
    """The active subscriptions whose Telegram alerts go to ``chat_id``, oldest first."""
    query = (
        select(Subscription)
        .where(col(Subscription.addresses)[CHANNEL].as_string() == chat_id)
        .where(col(Subscription.active))
        .order_by(col(Subscription.id))
    )
    return [sub for sub in session.exec(query) if CHANNEL in (sub.channels or [])]


def _by_public_id(session: Session, public_id: str) -> Subscription | None:
    return session.exec(select(Subscription).where(Subscription.public_id == public_id)).first()


def _escape(text: object) -> str:
    """Text for Telegram's HTML: only ``&``, ``<`` and ``>`` need escaping outside tags."""
    return html.escape(str(text), quote=False)


def _name(sub: Subscription) -> str:
    """A subscription's name, escaped, bold and isolated from the sentence's direction."""
    return f"<b>{_escape(i18n.isolate(sub.name))}</b>"


def _fill(template: object, **values: str) -> str:
    """Escape a catalogue string, then put in values that are HTML already."""
    return _escape(template).format(**values)
