"""E-mail: one multipart message per ``send``, over SMTP or into a drop folder.

With no ``host`` configured (the embedded default) each message is written as
``<drop_dir>/<message id>.eml`` instead, so a fresh install works without a
mail server and an admin can open what would have been sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from email import policy
from email.generator import BytesGenerator
from email.header import Header
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from io import BytesIO
from pathlib import Path
from typing import ClassVar, Self

import aiosmtplib
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, SecretStr

from agent.errors import AddressRejected, DeliveryError
from notifiers.base import Batching, Layout, Message

logger = logging.getLogger(__name__)

#: SMTP's line endings and folding, but headers stored raw are written as given.
_WIRE = policy.SMTP.clone(refold_source="none")


class EmailNotifier(BaseModel):
    """Sends alerts by e-mail through an SMTP server (``[notifiers.email]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layout: ClassVar[Layout] = Layout(Batching.ONE, inline_css=True)
    address_field: ClassVar[str | None] = "email"
    address_option: ClassVar[str | None] = "email"
    how_to_enable: ClassVar[str] = "add a [notifiers.email] table"

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

    @classmethod
    def check_address(cls, address: str) -> str:
        """Check an e-mail address's syntax (not deliverability: that needs DNS)."""
        try:
            return validate_email(address, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(str(exc)) from exc

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def send(self, message: Message) -> str | None:
        """Send ``message`` (or write it to the drop folder); return its Message-ID."""
        email = self.build(message)
        message_id = str(email["Message-ID"])
        data = serialise(email)
        if self.host is None:
            path = await asyncio.to_thread(self._drop, data, message_id)
            logger.info("wrote %s (no SMTP server configured)", path)
            return message_id
        await self._submit(data, message.to)
        return message_id

    def build(self, message: Message) -> EmailMessage:
        """Build the MIME message: text/plain first, then text/html, both UTF-8."""
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = message.to
        email.set_raw("Subject", encode_subject(message.subject))
        email["Date"] = formatdate(usegmt=True)
        domain = self.from_address.rpartition("@")[2].strip("> ") or None
        email["Message-ID"] = message.message_id or make_msgid(domain=domain)
        email.set_content(message.text, charset="utf-8")
        if message.html is not None:
            email.add_alternative(message.html, subtype="html", charset="utf-8")
        # After the body: setting content clears Content-* headers such as Content-Language.
        for name, value in {**_standard_headers(message), **message.headers}.items():
            del email[name]
            if value.isascii() and "\n" not in value and "\r" not in value:
                # Kept raw, so a long List-Unsubscribe URL stays on one line unfolded.
                email.set_raw(name, value)
            else:
                email[name] = value
        return email

    async def _submit(self, data: bytes, to: str) -> None:
        password = self.password.get_secret_value() if self.password else None
        try:
            await aiosmtplib.send(
                data,
                sender=parseaddr(self.from_address)[1],
                recipients=[to],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=password,
                start_tls=self.starttls,
                use_tls=self.use_tls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            if all(code >= 500 for code in codes):  # 5xx: for good; 4xx: try later
                raise AddressRejected(f"{to}: refused by {self.host}: {exc}") from exc
            raise DeliveryError(f"{to}: deferred by {self.host}: {exc}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{to}: via {self.host}:{self.port}: {exc}") from exc

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


def _standard_headers(message: Message) -> dict[str, str]:
    """Headers every alert carries: automatic, its language, RFC 8058 one-click unsubscribe."""
    headers = {"Auto-Submitted": "auto-generated", "Content-Language": message.language}
    if message.unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def encode_subject(subject: str) -> str:
    """Fold a subject so that every space survives decoding.

    The standard library's folder (3.11) drops the space between two RFC 2047
    encoded words it starts on separate lines ("שירותיליווי"), since white
    space between encoded words is not part of the text. ``Header`` splits the
    encoded text itself, so spaces stay inside the encoded words.
    """
    flat = " ".join(subject.split())  # no CR/LF can reach the header
    if flat.isascii():
        return Header(flat, "us-ascii", header_name="Subject").encode(linesep="\r\n")
    return Header(flat, "utf-8", header_name="Subject").encode(linesep="\r\n")


def serialise(email: EmailMessage) -> bytes:
    """Return the message as SMTP wants it: CRLF, 7-bit safe, raw headers left unfolded."""
    out = BytesIO()
    BytesGenerator(out, policy=_WIRE).flatten(email)
    return out.getvalue()
