"""A real SMTP server (aiosmtpd) on 127.0.0.1, port chosen by the OS.

The server is made with ``loop.create_server(lambda: SMTP(handler), ...)``;
aiosmtpd's ``Controller(port=0)`` cannot be used (aio-libs/aiosmtpd#388).
``smtp_server`` is an async fixture in the test's own loop; ``smtp_in_thread()``
runs one in its own thread and loop, for synchronous tests and for tests that
drive the CLI in a child process. Both give a ``Mailbox``: ``host``, ``port``,
``messages`` (parsed ``EmailMessage``s), ``envelopes``, ``refuse`` (addresses
answered with 550 at RCPT) and ``on_accept``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest_asyncio
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Mailbox:
    """What the server received, and the addresses it refuses."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    #: Called with each message just before it is accepted (a test's hook into that moment).
    on_accept: Callable[[EmailMessage], None] | None = None


class _Handler:
    """aiosmtpd handler: refuse listed recipients, keep every accepted message."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.mailbox.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = message_from_bytes(raw, policy=policy.default)
        self.mailbox.envelopes.append(envelope)
        self.mailbox.messages.append(parsed)
        if self.mailbox.on_accept is not None:
            self.mailbox.on_accept(parsed)
        return "250 Message accepted for delivery"


async def _start(mailbox: Mailbox) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    handler = _Handler(mailbox)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="smtp.test", loop=loop), mailbox.host, 0
    )
    mailbox.port = int(server.sockets[0].getsockname()[1])
    return server


@pytest_asyncio.fixture
async def smtp_server() -> AsyncIterator[Mailbox]:
    """A real SMTP server in the test's event loop."""
    mailbox = Mailbox()
    server = await _start(mailbox)
    try:
        yield mailbox
    finally:
        server.close()
        await server.wait_closed()


@contextlib.contextmanager
def smtp_in_thread() -> Iterator[Mailbox]:
    """Run a real SMTP server in its own thread and event loop for the duration."""
    mailbox = Mailbox()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: list[asyncio.Server] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder.append(loop.run_until_complete(_start(mailbox)))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="smtp-fake", daemon=True)
    thread.start()
    try:
        if not ready.wait(timeout=10):
            raise RuntimeError("the SMTP fake did not start")
        yield mailbox
    finally:
        if holder:
            asyncio.run_coroutine_threadsafe(_stop(holder[0]), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def _stop(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()
