"""Errors the agent raises on purpose.

* AgentError
  + ConfigError              -- the configuration is invalid; fix it and restart (exit 2).
  + RuleError                -- a subscription rule is malformed; says where.
  + SourceError              -- a source could not be polled this time; state is kept.
    - SourceBlocked          -- the source answered with a challenge page or 403.
  + DeliveryError            -- a message was not delivered; retried later.
    - RateLimited            -- the channel asked us to wait ``retry_after`` seconds.
    - PermanentDeliveryError -- retrying will not help (bad address, bot blocked).

Library exceptions are translated into these at the plugin boundary with
``raise ... from exc``; anything else that escapes is a bug.
"""

from __future__ import annotations

from typing import ClassVar


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""

    #: Whether trying the same thing again later may succeed.
    retryable: ClassVar[bool] = False


class ConfigError(AgentError):
    """The configuration is invalid: the message names the key and what was expected."""


class RuleError(AgentError):
    """A subscription rule could not be parsed or compiled.

    ``position`` is the 0-based character offset in the query string, when known.
    """

    def __init__(self, message: str, *, query: str = "", position: int | None = None) -> None:
        self.message = message
        self.query = query
        self.position = position
        super().__init__(self.describe())

    def describe(self) -> str:
        """Return the message with a caret under the offending character."""
        if self.position is None or not self.query:
            return self.message
        caret = " " * self.position + "^"
        return f"{self.message} (at position {self.position})\n  {self.query}\n  {caret}"


class SourceError(AgentError):
    """A source could not be polled this time; no item state is changed."""

    retryable = True


class SourceBlocked(SourceError):
    """The source answered with a bot-challenge page or HTTP 403 instead of data."""


class DeliveryError(AgentError):
    """A message was not accepted by its channel; the delivery is retried with backoff."""

    retryable = True


class RateLimited(DeliveryError):
    """The channel asked us to wait before sending again."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help: the address is refused or the bot was blocked."""

    retryable = False
