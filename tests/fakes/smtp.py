"""A real SMTP server (aiosmtpd) on 127.0.0.1, port chosen by the OS.

The server is made with ``loop.create_server(lambda: SMTP(handler), ...)``;
aiosmtpd's ``Controller(port=0)`` cannot be used (aio-libs/aiosmtpd#388).
``smtp_server`` is an async fixture in the test's own loop; ``smtp_in_thread()``
runs one in its own thread and loop, for synchronous tests and for tests that
drive the CLI in a child process. Both give a ``Mailbox``: ``host``, ``port``,
``messages`` (parsed ``EmailMessage``s), ``envelopes``, ``refuse`` (addresses
answered with 550 at RCPT), ``answers`` (a reply to give instead of accepting,
by command: ``{"DATA": "550 5.1.1 ..."}``; a 421 is given once, then the
connection is closed), ``on_accept``, and what the
connections did: ``connections`` (how many were opened), ``encrypted`` and
``logins`` (per accepted message) and ``drop_connections()``.

``smtp_running(security=..., login=...)`` starts one that speaks STARTTLS
(required, as aiosmtpd's ``require_starttls``), implicit TLS (the socket is
TLS from the first byte, port 465 style), or plain SMTP, and with ``login``
requires AUTH (PLAIN/LOGIN, over TLS only: ``auth_require_tls``) before MAIL,
answering ``535 5.7.8`` to a wrong password and ``530 5.7.0`` to a MAIL before
it, as aiosmtpd does. Certificates come from ``self_signed()``: a key and
certificate for 127.0.0.1 and localhost made with the ``openssl`` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


class Security(StrEnum):
    """How the fake server protects its connections."""

    PLAIN = "plain"
    #: Plain at first; the client must upgrade with STARTTLS before anything else.
    STARTTLS = "starttls"
    #: TLS from the first byte (SMTPS, port 465 style).
    TLS = "tls"


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate (its own CA) and its key, as PEM files."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context presenting this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def self_signed(folder: Path) -> Certificate:
    """Make a certificate for 127.0.0.1 and localhost with the ``openssl`` command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is needed to make a test certificate")
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
    )
    return Certificate(cert, key)


@dataclass
class Mailbox:
    """What the server received, and the addresses it refuses."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    #: A reply to give instead of accepting, by command ("MAIL", "RCPT", "DATA").
    answers: dict[str, str] = field(default_factory=dict)
    #: Called with each message just before it is accepted (a test's hook into that moment).
    on_accept: Callable[[EmailMessage], None] | None = None
    #: How many connections clients opened.
    connections: int = 0
    #: For each accepted message: whether its connection was TLS, and who had logged in.
    encrypted: list[bool] = field(default_factory=list)
    logins: list[str | None] = field(default_factory=list)
    #: The open server sides, for ``drop_connections``.
    servers: list[SMTP] = field(default_factory=list)

    def drop_connections(self) -> None:
        """Close every open connection from the server's side, as an idle timeout does."""
        for server in self.servers:
            if server.transport is not None:
                server.transport.close()
        self.servers.clear()


class Handler:
    """aiosmtpd handler: refuse listed recipients, keep every accepted message."""

    def __init__(self, mailbox: Mailbox, *, login_required: bool = False) -> None:
        self.mailbox = mailbox
        self.login_required = login_required

    def _answer(self, server: SMTP, command: str) -> str | None:
        """The reply set for ``command``; a 421 is said once and closes the connection."""
        answer = self.mailbox.answers.get(command)
        if answer is not None and answer.startswith("421") and server.transport is not None:
            # RFC 5321 §3.8: a server shutting a connection says 421 and closes it.
            del self.mailbox.answers[command]
            asyncio.get_running_loop().call_soon(server.transport.close)
        return answer

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.login_required and not session.authenticated:
            # What aiosmtpd's own auth_required answers; checked here, as aiosmtpd
            # warns (an error in the tests) when AUTH is required on an SMTPS socket.
            return "530 5.7.0 Authentication required"
        if (answer := self._answer(server, "MAIL")) is not None:
            return answer
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.mailbox.refuse:
            return "550 5.1.1 No such user here"
        if (answer := self._answer(server, "RCPT")) is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if (answer := self._answer(server, "DATA")) is not None:
            return answer
        raw = envelope.original_content or b""
        transport = server.transport
        self.mailbox.encrypted.append(
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )
        self.mailbox.logins.append(session.auth_data.decode() if session.auth_data else None)
        parsed = message_from_bytes(raw, policy=policy.default)
        self.mailbox.envelopes.append(envelope)
        self.mailbox.messages.append(parsed)
        if self.mailbox.on_accept is not None:
            self.mailbox.on_accept(parsed)
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class _Options:
    """How a fake server is set up."""

    security: Security = Security.PLAIN
    certificate: Certificate | None = None
    #: (username, password) a client must log in with; None: no login.
    login: tuple[str, str] | None = None


async def _start(mailbox: Mailbox, options: _Options | None = None) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    options = options or _Options()
    handler = Handler(mailbox, login_required=options.login is not None)
    context = options.certificate.server_context() if options.certificate else None

    def connection() -> SMTP:
        mailbox.connections += 1
        server = SMTP(
            handler,
            hostname="smtp.test",
            loop=loop,
            tls_context=context if options.security is Security.STARTTLS else None,
            require_starttls=options.security is Security.STARTTLS,
            # aiosmtpd sees only STARTTLS as TLS; an SMTPS socket is TLS all along.
            auth_require_tls=options.security is Security.STARTTLS,
            authenticator=_Authenticator(options.login) if options.login else None,
        )
        mailbox.servers.append(server)
        return server

    tls = context if options.security is Security.TLS else None
    # Port 0 picks a free one; a given port lets a test bring a server back where it was.
    server = await loop.create_server(connection, mailbox.host, mailbox.port, ssl=tls)
    mailbox.port = int(server.sockets[0].getsockname()[1])
    return server


class _Authenticator:
    """aiosmtpd authenticator: one username and password."""

    def __init__(self, login: tuple[str, str]) -> None:
        self.login = login

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and (
                data.login.decode(),
                data.password.decode(),
            )
            == self.login
        )
        # handled=False: aiosmtpd answers (235, or 535 5.7.8 to a wrong password) itself.
        return AuthResult(success=ok, handled=False, auth_data=data.login if ok else None)


@contextlib.asynccontextmanager
async def smtp_running(
    *,
    security: Security = Security.PLAIN,
    certificate: Certificate | None = None,
    login: tuple[str, str] | None = None,
) -> AsyncIterator[Mailbox]:
    """A real SMTP server in the running loop, with TLS and login as asked."""
    if security is not Security.PLAIN and certificate is None:
        raise ValueError(f"a {security} server needs a certificate")
    mailbox = Mailbox()
    server = await _start(mailbox, _Options(security, certificate, login))
    try:
        yield mailbox
    finally:
        server.close()
        mailbox.drop_connections()
        await server.wait_closed()


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
def smtp_in_thread(port: int = 0) -> Iterator[Mailbox]:
    """Run a real SMTP server in its own thread and event loop for the duration (on ``port``)."""
    mailbox = Mailbox(port=port)
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
