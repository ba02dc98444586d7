"""The public links in every message: feeds, unsubscribe, manage.

Unsubscribe links carry an HMAC of the subscription id, so they cannot be
guessed or forged from another subscription's link (RFC 8058 asks for a
"hard-to-forge component").
"""

from __future__ import annotations

import hashlib
import hmac

from agent.models import Subscription


class Links:
    """Builds and checks the URLs this service hands out."""

    def __init__(self, public_url: str, signing_key: str) -> None:
        self.public_url = public_url.rstrip("/")
        self._key = signing_key.encode()

    def feed_url(self, sub: Subscription) -> str:
        """The subscription's private Atom feed."""
        return f"{self.public_url}/feeds/{sub.feed_token}.xml"

    def unsubscribe_url(self, sub: Subscription) -> str:
        """The one-click unsubscribe link (GET shows a page, POST unsubscribes)."""
        assert sub.id is not None
        return f"{self.public_url}/unsubscribe/{self.sign(sub.id)}"

    def sign(self, subscription_id: int) -> str:
        """Return ``<id>.<signature>`` for a subscription."""
        return f"{subscription_id}.{self._signature(subscription_id)}"

    def verify(self, token: str) -> int | None:
        """Return the subscription id a token was signed for, or ``None`` if forged."""
        sid, _, signature = token.partition(".")
        if not sid.isdigit():
            return None
        if not hmac.compare_digest(signature, self._signature(int(sid))):
            return None
        return int(sid)

    def _signature(self, subscription_id: int) -> str:
        message = f"unsubscribe:{subscription_id}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]
