"""The public links in every message: feeds, unsubscribe, manage.

A signed link is ``<public id>.<expiry>.<signature>``: the subscription's
random public id (never reused, unlike a row id), a Unix time after which the
link is refused, and an HMAC-SHA256 of the purpose, the public id, the expiry
and the subscription's own ``link_secret``. So a link cannot be forged (RFC
8058 asks for a "hard-to-forge component"), cannot be used for another purpose,
and never reaches a subscription made after its own was deleted. Tokens are
parsed strictly: anything else is simply not a link.

A Telegram deep link (``t.me/<bot>?start=<payload>``) allows only
``[A-Za-z0-9_-]``, at most 64 characters, so the connect token is the same
three parts without dots: the public id (22), the expiry in days since 1970
(5 digits) and the signature (32 hex digits), 59 characters in all.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from agent.feeds import FeedFormat
from agent.models import Subscription

#: ASCII only, bounded: the public id, an expiry without leading zeros, 32 hex digits.
_TOKEN = re.compile(r"([A-Za-z0-9_-]{22})\.([1-9][0-9]{0,11})\.([0-9a-f]{32})", re.ASCII)

#: The same parts packed for a deep link: public id, expiry in whole days, signature.
_START = re.compile(r"([A-Za-z0-9_-]{22})([1-9][0-9]{4})([0-9a-f]{32})", re.ASCII)

#: Longer than any token we make; longer input is refused before the pattern runs.
_MAX_TOKEN = 80

_DAY = 86_400


class Purpose(StrEnum):
    """What a signed link is for; a link works only for its own purpose."""

    UNSUBSCRIBE = "unsubscribe"
    MANAGE = "manage"
    #: ``/start <token>`` connects a Telegram chat to the subscription.
    TELEGRAM_CONNECT = "telegram-connect"
    #: The double opt-in: the link in the confirmation e-mail turns the subscription on.
    CONFIRM = "confirm"


class LinkState(StrEnum):
    """What checking a link found."""

    VALID = "valid"
    #: Genuine, but past its expiry.
    EXPIRED = "expired"
    #: Forged, for another purpose, or for a subscription that is gone.
    INVALID = "invalid"


@dataclass(frozen=True)
class Token:
    """A token that has the right shape; not yet known to be genuine."""

    public_id: str
    expires: int
    signature: str


def parse(text: str) -> Token | None:
    """Return the parts of a well-formed token, or ``None`` for anything else."""
    if len(text) > _MAX_TOKEN:
        return None
    found = _TOKEN.fullmatch(text)
    if found is None:
        return None
    return Token(found[1], int(found[2]), found[3])


def parse_start(text: str) -> Token | None:
    """Return the parts of a well-formed deep-link (``/start``) token, or ``None``."""
    if len(text) > _MAX_TOKEN:
        return None
    found = _START.fullmatch(text)
    if found is None:
        return None
    return Token(found[1], int(found[2]) * _DAY, found[3])


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Links:
    """Builds and checks the URLs this service hands out."""

    def __init__(
        self,
        public_url: str,
        signing_key: str,
        *,
        clock: Callable[[], datetime] = _utcnow,
        unsubscribe_ttl: timedelta = timedelta(days=365),
        manage_ttl: timedelta = timedelta(days=30),
    ) -> None:
        self.public_url = public_url.rstrip("/")
        self._key = signing_key.encode()
        self._clock = clock
        # A connect link is handed out like a manage link, and lives as long.
        self._ttl = {
            Purpose.UNSUBSCRIBE: unsubscribe_ttl,
            Purpose.MANAGE: manage_ttl,
            Purpose.TELEGRAM_CONNECT: manage_ttl,
            Purpose.CONFIRM: manage_ttl,
        }

    def feed_url(self, sub: Subscription, fmt: FeedFormat = FeedFormat.ATOM) -> str:
        """The subscription's private Atom feed (or its feed in another format)."""
        return f"{self.public_url}/feeds/{sub.feed_token}.{fmt.value}"

    def rss_url(self, sub: Subscription) -> str:
        """The subscription's private RSS 2.0 feed."""
        return self.feed_url(sub, FeedFormat.RSS)

    def calendar_url(self, sub: Subscription) -> str:
        """The subscription's private iCalendar feed of deadlines."""
        return self.feed_url(sub, FeedFormat.ICS)

    def unsubscribe_url(self, sub: Subscription) -> str:
        """The one-click unsubscribe link (GET shows a page, POST unsubscribes)."""
        return f"{self.public_url}/unsubscribe/{self.sign(sub, Purpose.UNSUBSCRIBE)}"

    def manage_url(self, sub: Subscription) -> str:
        """A link to manage the subscription."""
        return f"{self.public_url}/manage/{self.sign(sub, Purpose.MANAGE)}"

    def confirm_url(self, sub: Subscription) -> str:
        """The link in the confirmation e-mail of a subscription made on the web."""
        return f"{self.public_url}/confirm/{self.sign(sub, Purpose.CONFIRM)}"

    def telegram_start(self, sub: Subscription) -> str:
        """The payload of ``sub``'s Telegram deep link: ``/start <it>`` connects a chat."""
        expires = self._expiry(Purpose.TELEGRAM_CONNECT)
        signature = self._signature(sub, Purpose.TELEGRAM_CONNECT, expires)
        return f"{sub.public_id}{expires // _DAY:05d}{signature}"

    def sign(self, sub: Subscription, purpose: Purpose) -> str:
        """Return a token for ``sub`` and ``purpose`` that expires after the purpose's TTL."""
        expires = self._expiry(purpose)
        return f"{sub.public_id}.{expires}.{self._signature(sub, purpose, expires)}"

    def _expiry(self, purpose: Purpose) -> int:
        # Rounded up to a whole UTC day, so the links of one day (in a feed, in
        # a resent message) are the same text.
        return math.ceil((self._clock() + self._ttl[purpose]).timestamp() / _DAY) * _DAY

    def check(self, token: Token | None, sub: Subscription | None, purpose: Purpose) -> LinkState:
        """Whether ``token`` is a genuine, unexpired ``purpose`` link of ``sub``."""
        if token is None or sub is None or sub.public_id != token.public_id:
            return LinkState.INVALID
        expected = self._signature(sub, purpose, token.expires)
        if not hmac.compare_digest(token.signature, expected):
            return LinkState.INVALID
        if token.expires < self._clock().timestamp():
            return LinkState.EXPIRED
        return LinkState.VALID

    def subkey(self, label: str) -> bytes:
        """A key of its own for ``label`` (the session cookie), derived from the signing key."""
        return hmac.new(self._key, f"subkey\n{label}".encode(), hashlib.sha256).digest()

    def _signature(self, sub: Subscription, purpose: Purpose, expires: int) -> str:
        if not sub.public_id or not sub.link_secret:
            raise ValueError(f"subscription {sub.name!r} has no public id: run `smart-agent init`")
        message = f"{purpose.value}\n{sub.public_id}\n{expires}\n{sub.link_secret}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]
