"""aiosmtpd on a fixed loopback port that a test turns off and on, in its own thread.

``tests.fakes.smtp`` binds port 0, so a server stopped there cannot come back
where the agent's config points. ``SmtpSwitch`` keeps its port: ``down()``
closes the listening socket and every open connection (a server that went
away), ``up()`` listens again on the same port. It records, besides the
``Mailbox``, when each message arrived (``arrived``, parallel to
``mailbox.messages``) and the client's port of the message being accepted
(``client_port``), so an ``on_accept`` hook can tell which process is sending it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.fakes.smtp import Handler, Mailbox
from tests.service import free_port

T = TypeVar("T")


class _Recording(Handler):
    """The fakes' handler, also noting who sends each message and when it arrived."""

    def __init__(self, switch: SmtpSwitch) -> None:
        super().__init__(switch.mailbox)
        self.switch = switch

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # Set before the parent runs ``on_accept``, with no await in between.
        peer: object = session.peer  # (host, port), though aiosmtpd types it as a str
        self.switch.client_port = peer[1] if isinstance(peer, tuple) else None
        before = len(self.switch.mailbox.messages)
        answer = await super().handle_DATA(server, session, envelope)
        if len(self.switch.mailbox.messages) > before:
            self.switch.arrived.append(time.monotonic())
        return answer


class SmtpSwitch:
    """A plain SMTP server on ``port`` (a free one by default), started by ``up()``."""

    def __init__(self, port: int | None = None) -> None:
        self.mailbox = Mailbox(port=port or free_port())
        #: ``time.monotonic()`` of each accepted message, in ``mailbox.messages``' order.
        self.arrived: list[float] = []
        #: The client's port of the message being accepted, for ``on_accept``.
        self.client_port: int | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="smtp-switch")
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port the server listens on whenever it is up."""
        return self.mailbox.port

    @property
    def is_up(self) -> bool:
        """Whether the server listens now."""
        return self._server is not None

    def up(self) -> None:
        """Listen on the port (again)."""
        if self._server is None:
            self._server = self._call(self._listen())

    def down(self) -> None:
        """Stop listening and close every open connection: the server went away."""
        server, self._server = self._server, None
        if server is not None:
            self._call(self._close(server))

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> asyncio.Server:
        handler = _Recording(self)

        def connection() -> SMTP:
            self.mailbox.connections += 1
            server = SMTP(handler, hostname="smtp.test", loop=self._loop)
            self.mailbox.servers.append(server)
            return server

        # asyncio sets SO_REUSEADDR: the port is free again at once after ``down``.
        return await self._loop.create_server(connection, self.mailbox.host, self.port)

    async def _close(self, server: asyncio.Server) -> None:
        server.close()
        self.mailbox.drop_connections()
        await server.wait_closed()

    def start(self) -> None:
        """Start the thread the server runs in (not yet listening)."""
        self._thread.start()

    def stop(self) -> None:
        """Close the server, stop the thread."""
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@contextlib.contextmanager
def smtp_switch(*, up: bool = True) -> Iterator[SmtpSwitch]:
    """An ``SmtpSwitch`` for the duration, listening at once unless ``up`` is false."""
    switch = SmtpSwitch()
    switch.start()
    try:
        if up:
            switch.up()
        yield switch
    finally:
        switch.stop()
