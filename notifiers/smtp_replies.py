"""What an SMTP server's refusal means for the address and for the message.

A 4xx reply is temporary: the delivery is retried with backoff. A 5xx reply
is permanent, and what it is about decides what happens:

* the **recipient's address** (any 5xx to ``RCPT TO``; at ``DATA``, an
  enhanced status code of the addressing or mailbox classes, RFC 3463
  ``5.1.x`` and ``5.2.0``/``5.2.1``, as servers that check recipients late
  send): ``AddressRejected``, and the dispatcher suppresses the address;
* **this message** (anything else at ``DATA``: content, size, spam policy):
  ``PermanentDeliveryError``, the address is kept;
* **our sender or session** (a 5xx to ``MAIL FROM``: the from address, a
  login the server wants): a retried ``DeliveryError``, since the operator's
  fix makes it go, and no subscriber's address is at fault.

``5.2.2`` (mailbox full) is, as RFC 3463 says, a persistent *transient*
condition: retried, not suppressed.
"""

from __future__ import annotations

import re
from enum import StrEnum

from agent.errors import AddressRejected, DeliveryError, PermanentDeliveryError

#: RFC 3463 enhanced status code at the start of a reply's text: class.subject.detail.
_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\b")

#: Codes about the sender, not the recipient, inside the addressing class.
_SENDER_CODES = {(1, 7), (1, 8)}
#: Mailbox codes about the recipient's mailbox for good (other, disabled).
_MAILBOX_GONE = {(2, 0), (2, 1)}
#: "Mailbox full": RFC 3463 calls it a persistent transient failure.
_MAILBOX_FULL = (2, 2)


class Stage(StrEnum):
    """The SMTP command a reply answered."""

    MAIL = "MAIL FROM"
    RCPT = "RCPT TO"
    DATA = "DATA"


def enhanced_code(text: str) -> tuple[int, int, int] | None:
    """The enhanced status code (``5.1.1`` → ``(5, 1, 1)``) a reply's text starts with."""
    found = _ENHANCED.match(text.strip())
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def about_recipient(stage: Stage, text: str) -> bool:
    """Whether a reply at ``stage`` is about the recipient's address or mailbox."""
    if stage is Stage.RCPT:
        return True
    code = enhanced_code(text)
    if stage is not Stage.DATA or code is None:
        return False
    subject = code[1:]
    if code[1] == 1:
        return subject not in _SENDER_CODES
    return subject in _MAILBOX_GONE


def refusal(stage: Stage, code: int, text: str, to: str, server: str) -> DeliveryError:
    """The error that says what a refusal of the message to ``to`` means."""
    said = f"{code} {' '.join(text.split())}".strip()
    enhanced = enhanced_code(text)
    if code < 500 or (enhanced is not None and enhanced[1:] == _MAILBOX_FULL):
        return DeliveryError(f"{to}: deferred by {server} at {stage}: {said}")
    if about_recipient(stage, text):
        return AddressRejected(f"{to}: refused by {server} at {stage}: {said}")
    if stage is Stage.DATA:
        return PermanentDeliveryError(f"{to}: message refused by {server}: {said}")
    return DeliveryError(
        f"{to}: {server} refuses the sender at {stage}: {said} "
        "(check from_address, username and password)"
    )
