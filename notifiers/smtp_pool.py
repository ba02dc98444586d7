"""A pool of persistent SMTP connections, shared safely by concurrent senders.

Opening an SMTP connection costs a TCP handshake, the greeting, EHLO and,
with TLS and a login, several more round trips: more than sending one
alert. The pool keeps up to ``size`` connections open and hands each to one
sender at a time (a last-in-first-out ``asyncio.LifoQueue`` of slots). A
connection is opened when a slot is first used, kept after a refused message (aiosmtplib resets
the envelope), and dropped when its state is unknown (a timeout, a lost
connection, a cancelled send). A server may close a connection that sat
idle; a reused connection that turns out closed (or answers 421, "closing")
is opened again and the message sent once more on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib

logger = logging.getLogger(__name__)

#: The reply of a server that is closing the connection (RFC 5321 §3.8).
CLOSING = 421

#: Seconds to wait for QUIT's answer when the pool closes.
QUIT_TIMEOUT = 5.0


@dataclass
class _Slot:
    """One place in the pool: a connection, or None before it is opened."""

    smtp: aiosmtplib.SMTP | None = None


class SmtpPool:
    """Up to ``size`` SMTP connections, opened when needed, reused, closed by ``close``."""

    def __init__(self, connect: Callable[[], Awaitable[aiosmtplib.SMTP]], size: int) -> None:
        if size < 1:
            raise ValueError(f"an SMTP pool needs at least one connection, not {size}")
        self._connect = connect
        self._slots = [_Slot() for _ in range(size)]
        # Last in, first out: a lone sender keeps using the one connection it opened,
        # and more are opened only when senders overlap.
        self._free: asyncio.LifoQueue[_Slot] = asyncio.LifoQueue()
        for slot in self._slots:
            self._free.put_nowait(slot)
        self._closed = False
        #: Connections opened so far (reconnections included), for logs and tests.
        self.opened = 0

    async def sendmail(self, sender: str, recipients: list[str], data: bytes) -> None:
        """Send one message on a free connection; raise aiosmtplib's errors as they come."""
        if self._closed:
            raise RuntimeError("the SMTP pool is closed")
        slot = await self._free.get()
        try:
            await self._send(slot, sender, recipients, data)
        finally:
            self._free.put_nowait(slot)

    async def close(self) -> None:
        """Say QUIT on every open connection and close it; the pool takes no more sends."""
        self._closed = True
        await asyncio.gather(*(self._quit(slot) for slot in self._slots))

    async def _send(self, slot: _Slot, sender: str, recipients: list[str], data: bytes) -> None:
        reused = slot.smtp is not None and slot.smtp.is_connected
        smtp = slot.smtp if reused and slot.smtp is not None else await self._open(slot)
        try:
            await self._transact(slot, smtp, sender, recipients, data)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException) as exc:
            closing = not isinstance(exc, aiosmtplib.SMTPResponseException) or exc.code == CLOSING
            if not (reused and closing):
                raise
            # An idle connection the server has since closed: nothing was accepted on it.
            logger.info("SMTP connection closed by the server (%s); opening another", exc)
            await self._transact(slot, await self._open(slot), sender, recipients, data)

    async def _transact(
        self,
        slot: _Slot,
        smtp: aiosmtplib.SMTP,
        sender: str,
        recipients: list[str],
        data: bytes,
    ) -> None:
        try:
            await smtp.sendmail(sender, recipients, data)
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused) as exc:
            # A refusal leaves a usable connection (sendmail sent RSET), unless it said 421.
            if getattr(exc, "code", None) == CLOSING or not smtp.is_connected:
                self._drop(slot)
            raise
        except BaseException:
            # A timeout, a lost connection, a cancelled send: its state is unknown.
            self._drop(slot)
            raise

    async def _open(self, slot: _Slot) -> aiosmtplib.SMTP:
        self._drop(slot)
        smtp = await self._connect()
        slot.smtp = smtp
        self.opened += 1
        return smtp

    def _drop(self, slot: _Slot) -> None:
        if slot.smtp is not None:
            slot.smtp.close()
            slot.smtp = None

    async def _quit(self, slot: _Slot) -> None:
        smtp, slot.smtp = slot.smtp, None
        if smtp is None or not smtp.is_connected:
            return
        # A server that does not answer QUIT is closed on anyway.
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            await smtp.quit(timeout=QUIT_TIMEOUT)
        smtp.close()
