"""The contract every watcher keeps, and the HTTP helpers they share.

A watcher is a pydantic model (its fields are the ``[sources.<name>]`` config
keys) with one coroutine, ``poll(http, cursor) -> Batch``. It downloads with the
shared ``httpx.AsyncClient`` it is given, parses bytes, and returns validated
``Item``s. It raises ``SourceError`` for anything that is not a clean answer:
a failed poll must never look like "no items". A malformed record is skipped
and counted in ``Batch.skipped`` (``parse_each``), never the end of the poll;
but a poll whose every record is malformed fails.

To add a source kind: write ``watchers/<kind>.py`` with a ``<Kind>Watcher``
model whose ``kind`` is ``Literal["<kind>"]``, add it to ``Source`` in
``watchers/__init__.py``, and serve its recorded data in ``tests/fakes``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.errors import SourceBlocked, SourceError
from agent.models import Item

logger = logging.getLogger(__name__)

#: Text that marks a bot-challenge page served instead of data.
_CHALLENGE_MARKS = ("cf-challenge", "challenge-platform", "Incapsula", "_Incapsula_Resource")
#: No real answer nests deeper (an OCDS release is about 8 levels); deeper is garbage, and
#: code walking it recursively would crash.
MAX_JSON_DEPTH = 100
#: No answer of a real source comes near this (the largest, a CKAN page of 32,000
#: rows, is some tens of MB); a bigger one is broken or hostile and is not read.
MAX_ANSWER_BYTES = 128 * 1024 * 1024
#: What a malformed record raises while it is read: wrong types, missing keys, values
#: out of range (pydantic's ValidationError is a ValueError), nesting too deep.
RECORD_ERRORS = (
    ArithmeticError,
    AttributeError,
    LookupError,
    RecursionError,
    TypeError,
    ValueError,
)

_Record = TypeVar("_Record")
_Parsed = TypeVar("_Parsed")


@dataclass(frozen=True)
class Batch:
    """What one poll found, and where the next poll should resume.

    ``complete`` says the batch is the source's whole current listing (not a
    page or a window), so an item missing from it really is gone upstream.
    """

    items: list[Item] = field(default_factory=list)
    cursor: str | None = None
    complete: bool = False
    #: Records that were malformed and left out (logged; shown in ``/health``).
    skipped: int = 0


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
    http: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    max_bytes: int = MAX_ANSWER_BYTES,
    **params: Any,
) -> httpx.Response:
    """GET ``url`` and return the response, or raise ``SourceError`` saying why not.

    A 403, a 429/5xx, a network error, a bot-challenge page, and an answer over
    ``max_bytes`` (counted as decoded, so a compressed
    bomb stops too) all raise: the caller never sees a failure as an empty
    answer. ``headers`` are sent as given (conditional GET); a 304 is returned
    to the caller, not raised.
    """
    try:
        async with http.stream("GET", url, params=params or None, headers=headers) as streamed:
            body = await _read_at_most(streamed, max_bytes)
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
        # InvalidURL and the idna codec's UnicodeError are not HTTPErrors: a link read
        # from an answer (a next page, a file) can be anything.
        raise SourceError(f"{url}: {type(exc).__name__}: {exc}") from exc
    response = _with_body(streamed, body)
    if response.status_code == 403 or _is_challenge(response):
        status = response.status_code
        raise SourceBlocked(f"{response.url}: blocked (HTTP {status} or a challenge page)")
    if response.status_code >= 400:
        raise SourceError(f"{response.url}: HTTP {response.status_code}")
    return response


async def _read_at_most(streamed: httpx.Response, limit: int) -> bytes:
    """The decoded body, or ``SourceError`` as soon as it passes ``limit`` bytes."""
    declared = streamed.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(streamed, limit)
    chunks, size = [], 0
    async for chunk in streamed.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise _too_large(streamed, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(streamed: httpx.Response, limit: int) -> SourceError:
    return SourceError(f"{streamed.url}: the answer is over {limit:,} bytes; not read")


def _with_body(streamed: httpx.Response, body: bytes) -> httpx.Response:
    """A complete response holding the decoded ``body`` (so no encoding header is kept)."""
    headers = [
        (name, value)
        for name, value in streamed.headers.multi_items()
        if name.lower() not in ("content-encoding", "content-length")
    ]
    return httpx.Response(
        streamed.status_code,
        headers=headers,
        content=body,
        request=streamed.request,
        history=streamed.history,
    )


async def fetch_json(
    http: httpx.AsyncClient, url: str, *, headers: dict[str, str] | None = None, **params: Any
) -> Any:
    """GET ``url`` and parse JSON; HTML or broken JSON raises ``SourceError``."""
    response = await fetch(http, url, headers=headers, **params)
    content_type = response.headers.get("content-type", "")
    body = response.content.lstrip()
    if "html" in content_type or body[:1] == b"<":
        raise SourceError(f"{response.url}: expected JSON, got HTML ({content_type or 'no type'})")
    return load_json(body, str(response.url))


def load_json(body: bytes, url: str) -> Any:
    """Parse a JSON answer; broken, too deep or too large JSON raises ``SourceError``.

    ``NaN`` and ``Infinity`` (not JSON, but Python servers write them) are read as
    ``null``: a value that is no number is an unknown one.
    """
    try:
        data = json.loads(decode_json_bytes(body), parse_constant=lambda _: None)
    except RecursionError as exc:
        raise SourceError(f"{url}: invalid JSON: nested too deeply to read") from exc
    except ValueError as exc:  # also an integer over Python's digit limit
        raise SourceError(f"{url}: invalid JSON: {exc}") from exc
    if _depth_over(data, MAX_JSON_DEPTH):
        raise SourceError(f"{url}: invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels")
    return data


def parse_each(
    records: Iterable[_Record], parse: Callable[[_Record], _Parsed | None], where: str
) -> tuple[list[_Parsed], int]:
    """Parse every record, skipping (and logging) those that raise; return them and the count.

    ``parse`` returns None for a record that is deliberately left out (not counted).
    If there were records and every one was malformed, the answer is broken: that
    raises ``SourceError`` rather than read as "nothing new".
    """
    parsed: list[_Parsed] = []
    skipped = 0
    for record in records:
        try:
            result = parse(record)
        except RECORD_ERRORS as exc:
            skipped += 1
            logger.warning("%s: malformed record skipped (%s): %.200r", where, _why(exc), record)
            continue
        if result is not None:
            parsed.append(result)
    if skipped and not parsed:
        raise SourceError(f"{where}: all {skipped} records are malformed")
    return parsed, skipped


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _depth_over(data: Any, limit: int) -> bool:
    # Iterative: a recursive walk is what deep nesting breaks. Only containers are stacked.
    if not isinstance(data, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


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
