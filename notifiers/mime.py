"""An alert's MIME message (RFC 2045-2047), written straight to the bytes SMTP carries.

Building it with ``EmailMessage`` and its generator parsed every header
several times and tried each transfer encoding on every body: it cost more
than rendering and sending the alert together. An alert has two shapes (text,
or text and HTML as ``multipart/alternative``), so this module writes them
directly: ASCII header values are written as given (a long
``List-Unsubscribe`` URL stays on one line), others become RFC 2047 encoded
words; each body is 7bit when it is ASCII with lines of at most 998
characters, else quoted-printable or base64, whichever is shorter (as
``EmailMessage.set_content`` chooses). Every line ends in CRLF. The tests read
each message back with the standard library's parser.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Iterable
from email.header import Header
from email.utils import formataddr, parseaddr

#: Every kind of line break a body may hold; each becomes CRLF on the wire.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

#: RFC 5322 §2.1.1: no line may be longer than 998 characters.
_MAX_LINE = 998


def wire(headers: Iterable[tuple[str, str]], text: str, html: str | None = None) -> bytes:
    """The message as SMTP carries it: ``headers`` (ASCII), then a text body or text and HTML."""
    lines = [f"{name}: {value}" for name, value in headers]
    lines.append("MIME-Version: 1.0")
    if html is None:
        lines += _part(text, "plain")
    else:
        # "=_" occurs in no quoted-printable or base64 text, and the rest is random.
        boundary = f"=_sa_{secrets.token_hex(16)}"
        lines += [f'Content-Type: multipart/alternative; boundary="{boundary}"', ""]
        for body, subtype in ((text, "plain"), (html, "html")):
            lines += [f"--{boundary}", *_part(body, subtype)]
        lines.append(f"--{boundary}--")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _part(body: str, subtype: str) -> list[str]:
    """A body part's headers, a blank line and its encoded lines."""
    encoding, payload = encode_body(body)
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        f"Content-Transfer-Encoding: {encoding}",
        "",
        *_LINE_BREAK.split(payload.removesuffix("\n")),
    ]


def encode_body(text: str) -> tuple[str, str]:
    """The transfer encoding for ``text`` as UTF-8, and the encoded text."""
    data = text.encode("utf-8")
    if data.isascii() and all(len(line) <= _MAX_LINE for line in data.splitlines()):
        return "7bit", text
    quoted = binascii.b2a_qp(data, istext=True).decode("ascii")
    encoded = base64.encodebytes(data).decode("ascii")
    if len(quoted) <= len(encoded):
        return "quoted-printable", quoted
    return "base64", encoded


def header(value: str) -> str:
    """An unstructured header value: as given if it is one line of ASCII, else encoded."""
    flat = value if "\n" not in value and "\r" not in value else " ".join(value.split())
    if flat.isascii():
        return flat
    return Header(flat, "utf-8").encode(linesep="\r\n")


def address(value: str) -> str:
    """``Name <addr@host>`` with a non-ASCII name as encoded words (the address as is)."""
    name, addr = parseaddr(value)
    return formataddr((name, addr), charset="utf-8") if addr else header(value)


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
