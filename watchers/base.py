"""The contract every watcher keeps, and the HTTP helpers they share.

A watcher is a pydantic model (its fields are the ``[sources.<name>]`` config
keys) with one coroutine, ``poll(http, cursor) -> Batch``. It downloads with the
shared ``httpx.AsyncClient`` it is given, parses bytes, and returns validated
``Item``s. It raises ``SourceError`` for anything that is not a clean answer:
a failed poll must never look like "no items".

To add a source kind: write ``watchers/<kind>.py`` with a ``<Kind>Watcher``
model whose ``kind`` is ``Literal["<kind>"]``, add it to ``Source`` in
``watchers/__init__.py``, and serve its recorded data in ``tests/fakes``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.errors import SourceBlocked, SourceError
from agent.models import Item

#: Text that marks a bot-challenge page served instead of data.
_CHALLENGE_MARKS = ("cf-challenge", "challenge-platform", "Incapsula", "_Incapsula_Resource")


@dataclass(frozen=True)
class Batch:
    """What one poll found, and where the next poll should resume.

    ``complete`` says the batch is the source's whole current listing (not a
    page or a window), so an item missing from it really is gone upstream.
    """

    items: list[Item] = field(default_factory=list)
    cursor: str | None = None
    complete: bool = False


class Watcher(Protocol):
    """A configured source: one instance per ``[sources.<name>]`` table."""

    @property
    def every(self) -> timedelta: ...

    @property
    def enabled(self) -> bool: ...

    @property
    def alert_on_first_poll(self) -> bool: ...

    @property
    def stale_limit(self) -> timedelta | None: ...

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch: ...


#: By default a source is stale after this many intervals without anything new...
STALE_POLLS = 72
#: ...and never sooner than this, so a long weekend or a holiday is not an alarm.
STALE_MIN = timedelta(days=4)


class SourceSettings(BaseModel):
    """Settings every source kind accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Whether the scheduler and ``run-once`` poll this source.
    enabled: bool = True
    #: How often to poll, as an ISO 8601 duration (``PT15M``) or seconds.
    every: timedelta = Field(default=timedelta(minutes=30), gt=timedelta(0))
    #: Alert on what the very first poll finds, instead of recording a silent baseline.
    alert_on_first_poll: bool = False
    #: Never read more than this many pages in one poll.
    max_pages: int = Field(default=200, ge=1)
    #: Report the source as stale when it answers but brings nothing new or changed for
    #: this long (a frozen table looks healthy otherwise); ``false`` turns it off for
    #: sources that are legitimately quiet. Default: ``STALE_POLLS`` intervals, at least
    #: ``STALE_MIN``.
    stale_after: timedelta | Literal[False] | None = None

    @field_validator("stale_after", mode="before")
    @classmethod
    def _duration_or_false(cls, value: object) -> object:
        # ``true`` would otherwise pass as one second.
        if value is True:
            raise ValueError("must be a duration, or false to turn it off")
        return value

    @field_validator("stale_after")
    @classmethod
    def _positive(
        cls, value: timedelta | Literal[False] | None
    ) -> timedelta | Literal[False] | None:
        if isinstance(value, timedelta) and value <= timedelta(0):
            raise ValueError("must be a positive duration, or false to turn it off")
        return value

    @property
    def stale_limit(self) -> timedelta | None:
        """How long the source may bring nothing new before health calls it stale."""
        if self.stale_after is False:
            return None
        return self.stale_after or max(self.every * STALE_POLLS, STALE_MIN)


async def fetch(
    http: httpx.AsyncClient, url: str, *, headers: dict[str, str] | None = None, **params: Any
) -> httpx.Response:
    """GET ``url`` and return the response, or raise ``SourceError`` saying why not.

    A 403, a 429/5xx, a network error, and a bot-challenge page all raise: the
    caller never sees a failure as an empty answer. ``headers`` are sent as given
    (conditional GET); a 304 is returned to the caller, not raised.
    """
    try:
        response = await http.get(url, params=params or None, headers=headers)
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code == 403 or _is_challenge(response):
        status = response.status_code
        raise SourceBlocked(f"{response.url}: blocked (HTTP {status} or a challenge page)")
    if response.status_code >= 400:
        raise SourceError(f"{response.url}: HTTP {response.status_code}")
    return response


async def fetch_json(
    http: httpx.AsyncClient, url: str, *, headers: dict[str, str] | None = None, **params: Any
) -> Any:
    """GET ``url`` and parse JSON; HTML or broken JSON raises ``SourceError``."""
    response = await fetch(http, url, headers=headers, **params)
    content_type = response.headers.get("content-type", "")
    body = response.content.lstrip()
    if "html" in content_type or body[:1] == b"<":
        raise SourceError(f"{response.url}: expected JSON, got HTML ({content_type or 'no type'})")
    try:
        return json.loads(decode_json_bytes(body))
    except ValueError as exc:
        raise SourceError(f"{response.url}: invalid JSON: {exc}") from exc


def decode_json_bytes(body: bytes) -> str:
    """Decode JSON bytes: UTF-8 (with or without BOM), else Latin-1 as publishers use it."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Some OCDS publishers (Mexico City) serve ISO-8859-1; every byte decodes.
        return body.decode("iso-8859-1")


def _is_challenge(response: httpx.Response) -> bool:
    if "html" not in response.headers.get("content-type", ""):
        return False
    head = response.content[:4096].decode("utf-8", "replace")
    return any(mark in head for mark in _CHALLENGE_MARKS)
