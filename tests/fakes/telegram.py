"""A Telegram Bot API fake at ``/bot<token>/<method>``, speaking the real protocol.

Shapes and rules are the Bot API's own (core.telegram.org/bots/api: "Making
requests" for the ``{ok, result | error_code, description, parameters}``
envelope, "getUpdates", "setWebhook", "getChatMember", "sendMessage",
"Formatting options" for HTML), and its flood limits are those of the Bot FAQ
cited in shared/docs/performance.md §1. It checks what Telegram checks:

* the token; HTML parse mode (only Telegram's tags, balanced, four named
  entities) and 4,096 characters after entities are parsed;
* flood limits, answered with 429 and ``parameters.retry_after`` as Telegram
  does: at most 30 accepted messages in any second, 1 a second in one chat,
  20 a minute in one group or channel (``app.state.flood_limits = False`` turns
  them off; ``app.state.flooded`` counts the 429s they caused);
* ``getUpdates`` with offsets (an update is confirmed by asking for a higher
  offset) and a long-poll ``timeout``, refused with 409 while a webhook is set.

Sent messages are in ``app.state.sent``. Failures are programmed by appending
names from ``FAILURES`` to ``app.state.failures``; each ``sendMessage`` takes
one (``"ok"`` takes one and goes on, to interleave failures with successes);
``app.state.method_failures`` does the same for any other method, by name.
Updates are pushed with ``push`` (shapes in ``tests.fakes.telegram_updates``);
``deliver`` posts one to the registered webhook instead. Group admins (for
``getChatMember``) are user ids in ``app.state.admins``. Bodies are read as form
fields (what python-telegram-bot posts) or JSON.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections import deque
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.telegram_updates import BOT, member

#: Telegram's limit on a message's text, after entities are parsed.
MAX_LENGTH = 4096

#: Flood limits, as (messages, seconds): over all chats, per chat, per group or channel.
OVERALL, PER_CHAT, PER_GROUP = (30, 1.0), (1, 1.0), (20, 60.0)

#: Programmable failures: name → (HTTP status, description, extra parameters).
FAILURES: dict[str, tuple[int, str, dict[str, Any] | None]] = {
    "rate_limit": (429, "Too Many Requests: retry after 30", {"retry_after": 30}),
    "flood": (429, "Too Many Requests: retry after 1", {"retry_after": 1}),
    "blocked": (403, "Forbidden: bot was blocked by the user", None),
    "kicked": (403, "Forbidden: bot was kicked from the supergroup chat", None),
    "parse": (400, "Bad Request: can't parse entities: unsupported start tag", None),
    "chat_not_found": (400, "Bad Request: chat not found", None),
    "server_error": (502, "Bad Gateway", None),
}

_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre"}
    | {"span", "tg-spoiler", "tg-emoji", "blockquote"}
)
_ENTITIES = frozenset({"lt", "gt", "amp", "quot"})


def build_app(token: str) -> Starlette:
    """Return the fake Bot API for one bot token."""

    async def method(request: Request) -> JSONResponse:
        if request.path_params["token"] != token:
            return _error(401, "Unauthorized")
        name = request.path_params["method"]
        params = await _params(request)
        app = request.app
        app.state.calls.append(name)
        if failing := app.state.method_failures.get(name):
            status, description, parameters = FAILURES[failing.pop(0)]
            return _error(status, description, parameters)
        if name == "getUpdates":
            return await _get_updates(request, params)
        if name == "sendMessage":
            return _send(app, params)
        if name == "getMe":
            return _ok(BOT)
        if name == "setWebhook":
            app.state.webhook = {"url": params["url"], "secret": params.get("secret_token", "")}
            return _ok(True)
        if name == "deleteWebhook":
            app.state.webhook = None
            return _ok(True)
        if name == "setMyCommands":
            app.state.commands[params.get("language_code")] = _listed(params["commands"])
            return _ok(True)
        if name == "getChatMember":
            return _ok(
                member(int(params["user_id"]), admin=int(params["user_id"]) in app.state.admins)
            )
        return _error(404, "Not Found: method not found")

    app = Starlette(routes=[Route("/bot{token}/{method}", method, methods=["GET", "POST"])])
    app.state.sent = []
    app.state.failures = []
    #: Failures for other methods: name → failure names, one taken per call.
    app.state.method_failures = {}
    app.state.calls = []
    app.state.updates = []
    app.state.next_update = 1
    app.state.lock = threading.Lock()
    app.state.webhook = None
    app.state.commands = {}
    app.state.admins = set()
    app.state.flood_limits = True
    app.state.flooded = 0
    app.state.windows = {}
    return app


def push(app: Starlette, update: dict[str, Any]) -> int:
    """Queue an update for ``getUpdates``; return its ``update_id``."""
    with app.state.lock:
        update_id: int = app.state.next_update
        app.state.next_update += 1
        app.state.updates.append({"update_id": update_id, **update})
    return update_id


def deliver(app: Starlette, update: dict[str, Any]) -> httpx.Response:
    """Post an update to the registered webhook, with its secret, as Telegram does."""
    hook = app.state.webhook
    assert hook is not None, "no webhook is set"
    with app.state.lock:
        body = {"update_id": app.state.next_update, **update}
        app.state.next_update += 1
    headers = {"X-Telegram-Bot-Api-Secret-Token": hook["secret"]}
    return httpx.post(hook["url"], json=body, headers=headers, timeout=30)


def texts(app: Starlette, chat_id: str | int) -> list[str]:
    """The texts sent to one chat, in order."""
    return [m["text"] for m in app.state.sent if m["chat_id"] == str(chat_id)]


def visible_text(html: str) -> str:
    """Return the text Telegram would show for an HTML-mode message; raise if it would refuse."""
    parser = _TelegramHTML()
    parser.feed(html)
    parser.close()
    if parser.open:
        raise ValueError(f"can't find end tag corresponding to start tag {parser.open[-1]}")
    return "".join(parser.text)


async def _get_updates(request: Request, params: dict[str, Any]) -> JSONResponse:
    app = request.app
    if app.state.webhook is not None:
        return _error(
            409,
            "Conflict: can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first",
        )
    offset = int(params.get("offset") or 0)
    allowed = _listed(params["allowed_updates"]) if params.get("allowed_updates") else None
    deadline = time.monotonic() + float(params.get("timeout") or 0)
    while True:
        with app.state.lock:
            # Asking for an offset confirms every update before it: Telegram forgets them.
            app.state.updates = [u for u in app.state.updates if u["update_id"] >= offset]
            found = [u for u in app.state.updates if allowed is None or _kind(u) in allowed]
        limit = int(params.get("limit") or 100)
        if found or time.monotonic() >= deadline or await request.is_disconnected():
            return _ok(found[:limit])
        await asyncio.sleep(0.02)


def _send(app: Starlette, params: dict[str, Any]) -> JSONResponse:
    if app.state.failures and (name := app.state.failures.pop(0)) != "ok":
        status, description, parameters = FAILURES[name]
        return _error(status, description, parameters)
    chat_id, text = str(params.get("chat_id", "")), str(params.get("text", ""))
    if not chat_id:
        return _error(400, "Bad Request: chat not found")
    if params.get("parse_mode") == "HTML":
        try:
            shown = visible_text(text)
        except ValueError as exc:
            return _error(400, f"Bad Request: can't parse entities: {exc}")
    else:
        shown = text
    if not shown.strip():
        return _error(400, "Bad Request: message text is empty")
    if len(shown) > MAX_LENGTH:
        return _error(400, "Bad Request: message is too long")
    if app.state.flood_limits and (wait := _flood_wait(app, chat_id)):
        app.state.flooded += 1
        return _error(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
    app.state.sent.append(dict(params, chat_id=chat_id, text=text))
    return _ok(
        {
            "message_id": len(app.state.sent),
            "date": 1_795_424_400,
            "chat": _chat(chat_id),
            "text": shown,
        }
    )


def _flood_wait(app: Starlette, chat_id: str) -> int:
    """Seconds until ``chat_id`` may get a message (0: now, and it is counted)."""
    now = time.monotonic()
    limits = [("all", OVERALL), (chat_id, PER_CHAT)]
    if chat_id.startswith(("-", "@")):
        limits.append((f"group {chat_id}", PER_GROUP))
    waits: list[float] = []
    for key, (count, period) in limits:
        window: deque[float] = app.state.windows.setdefault(key, deque())
        while window and window[0] <= now - period:
            window.popleft()
        if len(window) >= count:
            waits.append(window[0] + period - now)
    if waits:
        return max(1, math.ceil(max(waits)))
    for key, _ in limits:
        app.state.windows[key].append(now)
    return 0


async def _params(request: Request) -> dict[str, Any]:
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        parsed: dict[str, Any] = json.loads(body or b"{}")
        return parsed
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def _listed(value: Any) -> Any:
    """A list parameter: PTB sends lists as JSON text in a form field."""
    return json.loads(value) if isinstance(value, str) else value


def _kind(update: dict[str, Any]) -> str:
    return next(key for key in update if key != "update_id")


def _chat(chat_id: str) -> dict[str, Any]:
    if chat_id.lstrip("-").isdigit():
        ident = int(chat_id)
        return {"id": ident, "type": "supergroup" if ident < 0 else "private", "title": "chat"}
    return {"id": -1001000000001, "type": "channel", "username": chat_id.lstrip("@")}


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=status)


class _TelegramHTML(HTMLParser):
    """Telegram's HTML rules: a short list of tags, balanced, four named entities."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            raise ValueError(f"unsupported start tag {tag!r}")
        if tag == "a" and not dict(attrs).get("href"):
            raise ValueError("a tag without href")
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            raise ValueError(f"unexpected end tag {tag!r}")
        self.open.pop()

    def handle_data(self, data: str) -> None:
        if any(char in data for char in "<>&"):
            raise ValueError("unescaped <, > or &")
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in _ENTITIES:
            raise ValueError(f"unsupported entity &{name};")
        self.text.append({"lt": "<", "gt": ">", "amp": "&", "quot": '"'}[name])

    def handle_charref(self, name: str) -> None:
        self.text.append(chr(int(name[1:], 16) if name[:1] in "xX" else int(name)))
