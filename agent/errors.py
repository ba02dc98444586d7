"""Errors the agent raises on purpose.

* AgentError
  + ConfigError              -- the configuration is invalid; fix it and restart (exit 2).
  + RuleError                -- a subscription rule is malformed; says where.
    - RuleLimitError         -- over a size limit or holding a control character; one line.
  + SourceError              -- a source could not be polled this time; state is kept.
    - SourceBlocked          -- the source answered with a challenge page or 403.
  + DeliveryError            -- a message was not delivered; retried later.
    - RateLimited            -- the channel asked us to wait ``retry_after`` seconds.
    - PermanentDeliveryError -- retrying will not help (bad address, bot blocked).
  + StorageError             -- the database cannot be opened or written; that step is rolled back.
    - DatabaseLocked         -- another process held the database past the busy timeout.

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


class RuleLimitError(RuleError):
    """A rule over a size limit (length, nesting, terms, values) or holding a control character.

    Said in one line with the position: the query is not echoed, as it may be
    huge or hold characters a terminal would act on.
    """

    def describe(self) -> str:
        """Return the message and the position, on one line."""
        where = "" if self.position is None else f" (at position {self.position})"
        return self.message + where


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


class ChannelUnavailable(DeliveryError):
    """The channel itself could not be reached (connection refused, timed out, gone).

    Nothing was sent to anyone: the dispatcher pauses the whole channel, for
    every worker, and sends what waits in the order it was made once it is back.
    """


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help: the address is refused or the bot was blocked."""

    retryable = False


class AddressRejected(PermanentDeliveryError):
    """The channel refused this address for good (an SMTP 5xx, a bot blocked by the user).

    The dispatcher suppresses the address: nothing more is sent to it on that
    channel until an admin lifts the suppression.
    """


class StorageError(AgentError):
    """The database cannot be opened, read or written: said in one line, with the cause.

    What the failing step was writing is rolled back, so once the cause is
    fixed (a path, space on the disk, a lock released) the run is repeated.
    """


class DatabaseLocked(StorageError):
    """Another process kept the database locked for longer than the busy timeout."""

    retryable = True


class DatabaseUnavailable(StorageError):
    """The database server could not be reached (restarting, the network): try again soon."""

    retryable = True
