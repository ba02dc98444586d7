"""A Telegram Bot API fake: ``getMe`` and ``sendMessage`` at ``/bot<token>/<method>``.

It checks what Telegram checks: the token, the chat id, HTML parse mode
(only Telegram's tags, balanced, only its named entities) and the 4096
character limit after entities are parsed. Sent messages are recorded in
``app.state.sent``. Failures are programmed by appending names from
``FAILURES`` to ``app.state.failures``; each ``sendMessage`` consumes one
(``"ok"`` consumes one and succeeds, to interleave failures with successes).
Bodies are read as form fields (what python-telegram-bot posts) or JSON.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

#: Telegram's limit on a message's text, after entities are parsed.
MAX_LENGTH = 4096

#: Programmable failures: name → (HTTP status, description, extra parameters).
FAILURES: dict[str, tuple[int, str, dict[str, Any] | None]] = {
    "rate_limit": (429, "Too Many Requests: retry after 30", {"retry_after": 30}),
    "blocked": (403, "Forbidden: bot was blocked by the user", None),
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
        if name == "getMe":
            return _ok(_BOT)
        if name == "sendMessage":
            return _send(request.app, await _params(request))
        return _error(404, "Not Found: method not found")

    app = Starlette(routes=[Route("/bot{token}/{method}", method, methods=["GET", "POST"])])
    app.state.sent = []
    app.state.failures = []
    return app


def visible_text(html: str) -> str:
    """Return the text Telegram would show for an HTML-mode message; raise if it would refuse."""
    parser = _TelegramHTML()
    parser.feed(html)
    parser.close()
    if parser.open:
        raise ValueError(f"can't find end tag corresponding to start tag {parser.open[-1]}")
    return "".join(parser.text)


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
    app.state.sent.append(dict(params, chat_id=chat_id, text=text))
    return _ok(
        {
            "message_id": len(app.state.sent),
            "date": 1_795_424_400,
            "chat": _chat(chat_id),
            "text": shown,
        }
    )


async def _params(request: Request) -> dict[str, Any]:
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        parsed: dict[str, Any] = json.loads(body or b"{}")
        return parsed
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


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


_BOT = {
    "id": 123456,
    "is_bot": True,
    "first_name": "Smart Agent",
    "username": "smart_agent_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


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
