"""Updates as Telegram sends them, for ``tests.fakes.telegram.push`` and ``deliver``.

Shapes from the Bot API reference (core.telegram.org/bots/api): "Update",
"Message" (a command carries a ``bot_command`` entity at offset 0), "Chat",
"User", "ChatMemberUpdated" and the "ChatMember" kinds, with every field
python-telegram-bot requires.
"""

from __future__ import annotations

from typing import Any

#: What ``getMe`` answers: the bot the tests talk to.
BOT: dict[str, Any] = {
    "id": 123456,
    "is_bot": True,
    "first_name": "Smart Agent",
    "username": "smart_agent_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}

#: A date all fake updates carry (2026-11-23 09:00 UTC).
DATE = 1_795_424_400

_messages = iter(range(1, 1_000_000))


def user(user_id: int, language: str = "he") -> dict[str, Any]:
    """A person using Telegram in ``language``."""
    return {"id": user_id, "is_bot": False, "first_name": "Dana", "language_code": language}


def chat(chat_id: int) -> dict[str, Any]:
    """A private chat (positive id), a supergroup (-100…) or a group (other negative ids)."""
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Dana"}
    kind = "supergroup" if str(chat_id).startswith("-100") else "group"
    return {"id": chat_id, "type": kind, "title": "NGO team"}


def private_message(chat_id: int, text: str, *, language: str = "he") -> dict[str, Any]:
    """``text`` typed by a user in their private chat with the bot."""
    return {"message": _message(chat(chat_id), text, sender=user(chat_id, language))}


def group_message(
    chat_id: int, text: str, *, user_id: int = 777, language: str = "he"
) -> dict[str, Any]:
    """``text`` typed by user ``user_id`` in a group or supergroup."""
    return {"message": _message(chat(chat_id), text, sender=user(user_id, language))}


def channel_post(chat_id: int, text: str) -> dict[str, Any]:
    """``text`` posted in a channel the bot administers (signed by the channel, no user)."""
    channel = {"id": chat_id, "type": "channel", "title": "NGO alerts"}
    return {"channel_post": {**_message(channel, text, sender=None), "sender_chat": channel}}


def my_chat_member(chat_id: int, status: str, *, by: int = 777) -> dict[str, Any]:
    """The bot's own membership changed: ``kicked`` (blocked or removed), ``left``, ``member``."""
    new: dict[str, Any] = {"status": status, "user": BOT}
    if status == "kicked":
        new["until_date"] = 0
    return {
        "my_chat_member": {
            "chat": chat(chat_id),
            "from": user(by),
            "date": DATE,
            "old_chat_member": {"status": "member", "user": BOT},
            "new_chat_member": new,
        }
    }


def migrated(old: int, new: int) -> dict[str, Any]:
    """The service message in a group that became supergroup ``new``."""
    message = _message(chat(old), None, sender=user(777))
    return {"message": {**message, "migrate_to_chat_id": new}}


def member(user_id: int, *, admin: bool) -> dict[str, Any]:
    """``getChatMember``'s answer: the group's owner, or a plain member."""
    if admin:
        return {"status": "creator", "user": user(user_id), "is_anonymous": False}
    return {"status": "member", "user": user(user_id)}


def _message(
    where: dict[str, Any], text: str | None, *, sender: dict[str, Any] | None
) -> dict[str, Any]:
    message: dict[str, Any] = {"message_id": next(_messages), "date": DATE, "chat": where}
    if sender is not None:
        message["from"] = sender
    if text is not None:
        message["text"] = text
        if text.startswith("/"):
            length = len(text.split(" ", 1)[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return message
