"""E-mail: one multipart message per ``send``, over SMTP or into a drop folder.

Entered (``async with``), the notifier keeps a pool of ``pool_size`` SMTP
connections open (``notifiers.smtp_pool``); a ``send`` outside that opens a
connection for the one message. With no ``host`` configured (the embedded
default) each message is written as ``<drop_dir>/<message id>.eml`` instead,
so a fresh install works without a mail server and an admin can open what
would have been sent.

The MIME message is built by ``notifiers.mime``; how the server's refusals
are read is in ``notifiers.smtp_replies``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import ssl
from dataclasses import dataclass, replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import ClassVar, Self

import aiosmtplib
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from agent.errors import ChannelUnavailable, DeliveryError, PermanentDeliveryError
from notifiers import mime
from notifiers.base import Batching, Layout, Message, Verification
from notifiers.smtp_pool import SmtpPool
from notifiers.smtp_replies import Stage, refusal

logger = logging.getLogger(__name__)


class EmailNotifier(BaseModel):
    """Sends alerts by e-mail through an SMTP server (``[notifiers.email]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layout: ClassVar[Layout] = Layout(Batching.ONE, inline_css=True)
    address_field: ClassVar[str | None] = "email"
    address_option: ClassVar[str | None] = "email"
    how_to_enable: ClassVar[str] = "add a [notifiers.email] table"
    # Anyone can type any address: nothing but the confirmation goes there until it is confirmed.
    verification: ClassVar[Verification] = Verification.MESSAGE
    address_input: ClassVar[str | None] = "email"

    #: The SMTP server; None writes .eml files to ``drop_dir`` instead.
    host: str | None = None
    port: int = 25
    username: str | None = None
    #: From ``SMART_AGENT_NOTIFIERS__EMAIL__PASSWORD``, never the config file.
    password: SecretStr | None = None
    #: Upgrade a plain connection with STARTTLS (usually port 587).
    starttls: bool = False
    #: Connect with TLS from the start (usually port 465).
    use_tls: bool = False
    from_address: str = "Smart Agent <alerts@smart-agent.invalid>"
    drop_dir: Path = Path("var/mail")
    #: Seconds to wait for the server at each step.
    timeout: float = 30
    #: How many SMTP connections are kept open and used at once.
    pool_size: int = Field(default=4, ge=1, le=64)
    #: Check the server's certificate (STARTTLS, ``use_tls``); off only for a trial.
    validate_certs: bool = True
    #: A PEM file of CA certificates to trust instead of the system's (a private CA).
    ca_file: Path | None = None

    _pool: SmtpPool | None = PrivateAttr(default=None)
    _entered: int = PrivateAttr(default=0)

    @model_validator(mode="after")
    def _one_kind_of_tls(self) -> Self:
        if self.starttls and self.use_tls:
            raise ValueError("set starttls (usually port 587) or use_tls (port 465), not both")
        return self

    @classmethod
    def check_address(cls, address: str) -> str:
        """Check an e-mail address's syntax (not deliverability: that needs DNS)."""
        try:
            return validate_email(address, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(str(exc)) from exc

    async def __aenter__(self) -> Self:
        """Start the connection pool (connections open when first used)."""
        if self._pool is None and self.host is not None:
            self._pool = SmtpPool(self._connect, self.pool_size)
        self._entered += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the pool's connections when the last user leaves."""
        self._entered -= 1
        if self._entered == 0 and self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def send(self, message: Message) -> str | None:
        """Send ``message`` (or write it to the drop folder); return its Message-ID."""
        try:
            # Addresses are checked when saved; this keeps a bad row that got into the
            # database anyway (a line break in it) from ever reaching an SMTP command.
            self.check_address(message.to)
        except ValueError as exc:
            raise PermanentDeliveryError(f"{message.to!r} is not an e-mail address: {exc}") from exc
        message_id = message.message_id or make_msgid(domain=self._sender.domain)
        data = self.wire(replace(message, message_id=message_id))
        if self.host is None:
            path = await asyncio.to_thread(self._drop, data, message_id)
            logger.info("wrote %s (no SMTP server configured)", path)
            return message_id
        await self._submit(data, message.to)
        return message_id

    def wire(self, message: Message) -> bytes:
        """The MIME message as sent: text/plain first, then text/html, both UTF-8."""
        sender = self._sender
        headers = [
            ("From", sender.header),
            ("To", mime.address(message.to)),
            ("Subject", mime.encode_subject(message.subject)),
            ("Date", formatdate(usegmt=True)),
            ("Message-ID", message.message_id or make_msgid(domain=sender.domain)),
        ]
        extra = {**_standard_headers(message, sender.name), **message.headers}
        headers += [(name, mime.header(value)) for name, value in extra.items()]
        return mime.wire(headers, message.text, message.html)

    def build(self, message: Message) -> EmailMessage:
        """The message as a mail client reads it (``wire``, parsed back)."""
        email: EmailMessage = message_from_bytes(self.wire(message), policy=policy.default)
        return email

    async def _submit(self, data: bytes, to: str) -> None:
        sender = self._sender.address
        try:
            if self._pool is not None:
                await self._pool.sendmail(sender, [to], data)
                return
            smtp = await self._connect()
            async with smtp:
                await smtp.sendmail(sender, [to], data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            [refused] = exc.recipients
            raise refusal(Stage.RCPT, refused.code, refused.message, to, self._server) from exc
        except aiosmtplib.SMTPSenderRefused as exc:
            raise refusal(Stage.MAIL, exc.code, exc.message, to, self._server) from exc
        except aiosmtplib.SMTPDataError as exc:
            raise refusal(Stage.DATA, exc.code, exc.message, to, self._server) from exc
        except _UNREACHABLE as exc:
            # Not this message's fault: nobody can be sent anything until the server is back.
            raise ChannelUnavailable(f"{to}: via {self._server}: {_describe(exc)}") from exc
        except aiosmtplib.SMTPException as exc:
            raise DeliveryError(f"{to}: via {self._server}: {_describe(exc)}") from exc

    @property
    def _sender(self) -> _Sender:
        return _sender(self.from_address)

    @property
    def _server(self) -> str:
        return f"{self.host}:{self.port}"

    async def _connect(self) -> aiosmtplib.SMTP:
        """Open one connection: TLS as configured, then the login if a username is set."""
        context = None
        if self.starttls or self.use_tls:
            context = await asyncio.to_thread(tls_context, self.ca_file, self.validate_certs)
        password = self.password.get_secret_value() if self.password else None
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=password,
            start_tls=self.starttls,
            use_tls=self.use_tls,
            tls_context=context,
            timeout=self.timeout,
        )
        await smtp.connect()
        return smtp

    def _drop(self, data: bytes, message_id: str) -> Path:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", message_id.strip("<>")) or "message"
        path = self.drop_dir / f"{name}.eml"
        # Written aside and renamed, so a full disk never leaves half a message.
        partial = path.with_name(f".{path.name}.partial")
        try:
            self.drop_dir.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(data)
            partial.replace(path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            why = _why(self.drop_dir, exc)
            raise DeliveryError(
                f"cannot write e-mails to the drop folder {self.drop_dir}: {why}"
            ) from exc
        return path


def _why(folder: Path, exc: OSError) -> str:
    # mkdir under a file says only "Not a directory": name the file in the way.
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    return f"{blocker} is a file, not a folder" if blocker else exc.strerror or str(exc)


@dataclass(frozen=True)
class _Sender:
    """The parts of ``from_address``: display name, address, domain, encoded header."""

    name: str
    address: str
    domain: str | None
    header: str


@functools.lru_cache(maxsize=16)
def _sender(from_address: str) -> _Sender:
    """``from_address`` taken apart once (it is read for every message)."""
    name, address = parseaddr(from_address)
    domain = from_address.rpartition("@")[2].strip("> ") or None
    return _Sender(name, address, domain, mime.address(from_address))


@functools.cache
def tls_context(ca_file: Path | None, validate_certs: bool) -> ssl.SSLContext:
    """Trust ``ca_file`` if set, else the system's CAs; check nothing if told not to.

    Made once per setting: reading the system's CA certificates takes tens of
    milliseconds, which aiosmtplib spends on every connection it opens itself.
    """
    context = ssl.create_default_context(cafile=ca_file)
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


#: Errors that mean the server could not be reached or talked to at all (the
#: network's OSError included), unlike a reply about one message.
_UNREACHABLE: tuple[type[Exception], ...] = (
    OSError,
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
)


def _describe(exc: Exception) -> str:
    """An SMTP error in words; a login refusal says so."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return f"login refused ({exc.code} {exc.message}): check username and password"
    return str(exc) or type(exc).__name__


def _standard_headers(message: Message, sender_name: str) -> dict[str, str]:
    """Headers every alert carries: automatic, its language, its list, one-click unsubscribe."""
    headers = {"Auto-Submitted": "auto-generated", "Content-Language": message.language}
    if message.list_id:
        # RFC 2919: a description (the sender's name) and a stable id per subscription.
        headers["List-Id"] = f"{mime.header(_phrase(sender_name))} <{message.list_id}>".lstrip()
    if message.unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def _phrase(name: str) -> str:
    """``name`` as an RFC 5322 phrase: quoted unless it is plain words."""
    # Non-ASCII words become RFC 2047 encoded words, which may not stand inside quotes.
    if not name.isascii() or re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
