"""The soak benchmark's channels: an SMTP server and the Telegram fake that log every arrival.

Run by ``bench/soak.py`` as ``python -m bench.soak_sinks {smtp,telegram} LOG``,
each in its own process, so that the time a message is accepted is not held
up by anyone else's work. Each prints ``PORT <n>`` once it listens, appends one
JSON line per accepted message to LOG, and stops when its standard input ends.

A line holds the Unix time the channel accepted the message (``t``), its
recipient (``to``: the e-mail address, or the chat id), its identity (``id``:
the e-mail ``Message-ID``, which a resend keeps; on Telegram the ``#sa…``
reference the message ends with, made of that Message-ID, or else Telegram's
own message id, which a resend does not keep) and the item links it carries
(``urls``: the target of every ``<source>/i/<key>`` link in its HTML, how an
alert names its item in both channels).

The SMTP side is aiosmtpd, as in the tests; the Telegram side is
``tests.fakes.telegram``, with its flood limits (30 messages a second in all,
one a second per chat), which answer 429 as Telegram does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
import time
from email import policy
from email.parser import BytesParser
from html import unescape
from pathlib import Path
from typing import IO, Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from bench import asgi
from tests.fakes import telegram

#: The bot token the workers are given (the fake checks it).
TOKEN = "123456:SOAK-token"
#: An item's link, ``<the source's base URL>/i/<key>``, as an HTML link's target: the
#: key may hold slashes, spaces and Hebrew, so the plain text cannot say where it ends.
ITEM_LINK = re.compile(r'href="([^"]*/i/[^"]*)"')
#: The reference a Telegram message ends with (``agent.rendering.reference``).
REFERENCE = re.compile(r"#(sa[0-9a-f]{8})\b")


def record(log: IO[str], to: str, ident: str | None, html: str, at: float) -> None:
    """Append one arrival to the log, with the item links in its HTML."""
    urls = sorted({unescape(url) for url in ITEM_LINK.findall(html)})
    line = {"t": at, "to": to, "id": ident, "urls": urls}
    log.write(json.dumps(line, ensure_ascii=False) + "\n")


class _Mailbox:
    """aiosmtpd handler: accept every message and log it."""

    def __init__(self, log: IO[str]) -> None:
        self.log = log
        self.parser = BytesParser(policy=policy.default)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        at = time.time()
        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else content.encode()
        message = self.parser.parsebytes(data)
        body = message.get_body(("html",))
        html = body.get_content() if body is not None else ""
        for to in envelope.rcpt_tos:
            record(self.log, to, message.get("Message-ID"), html, at)
        return "250 OK"


class _Sent(list[Any]):
    """``app.state.sent`` of the Telegram fake: logs each accepted message as it is appended.

    The fake numbers messages by the list's length, so one placeholder is kept each.
    """

    def __init__(self, log: IO[str]) -> None:
        super().__init__()
        self.log = log

    def append(self, message: Any) -> None:
        """Log the accepted message, keep its place."""
        at = time.time()
        super().append(None)
        text = message["text"]
        found = REFERENCE.search(text)
        ident = found.group(1) if found else f"telegram-{len(self)}"
        record(self.log, message["chat_id"], ident, text, at)


async def _until_stdin_ends() -> None:
    while await asyncio.to_thread(sys.stdin.readline):
        pass


async def smtp(log: IO[str]) -> None:
    """Accept mail on 127.0.0.1 until standard input ends."""
    loop = asyncio.get_running_loop()
    mailbox = _Mailbox(log)
    server = await loop.create_server(
        lambda: SMTP(mailbox, hostname="sink.soak", loop=loop), "127.0.0.1", 0
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await _until_stdin_ends()
    server.close()


async def bot(log: IO[str]) -> None:
    """Serve the Bot API fake on 127.0.0.1 until standard input ends."""
    app = telegram.build_app(TOKEN)
    app.state.sent = _Sent(log)
    server, running = await asgi.start(app)
    await _until_stdin_ends()
    server.should_exit = True
    await running
    print(json.dumps({"flooded": app.state.flooded}), flush=True)


def main() -> None:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("channel", choices=["smtp", "telegram"])
    parser.add_argument("log", type=Path, help="where arrivals are appended (JSON lines)")
    args = parser.parse_args()
    # aiosmtpd logs every connection.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    with args.log.open("a", encoding="utf-8") as log:
        asyncio.run(smtp(log) if args.channel == "smtp" else bot(log))


if __name__ == "__main__":
    main()
