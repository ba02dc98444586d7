"""RSS and Atom feeds: download the bytes, repair the encoding, let feedparser read them.

A feed is a sliding window, never a whole listing, so batches are never
``complete``. The cursor holds the ``ETag`` and ``Last-Modified`` validators
for a conditional GET. A feed that is ill-formed but still yields entries is
used; one that yields nothing while ill-formed is a failed poll, not "no news".
An entry that cannot become an item is skipped and counted.
"""

from __future__ import annotations

import calendar
import codecs
import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser
import httpx
from pydantic import field_validator

from agent.errors import SourceError
from agent.models import Item, Kind
from watchers.base import RECORD_ERRORS, Batch, SourceSettings, fetch, parse_each
from watchers.parsing import clean_text

logger = logging.getLogger(__name__)

#: Content type sent to feedparser once we have re-encoded the body ourselves.
_UTF8_XML = "application/xml; charset=utf-8"
#: Query parameters that only track clicks; a link differing in them is the same link.
_TRACKING_PREFIXES = ("utm_", "fbclid", "gclid")
#: feedparser's "bozo" reasons that do not mean the document was cut short or broken.
_HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.CharacterEncodingUnknown)


class RssWatcher(SourceSettings):
    """An RSS or Atom feed; every entry becomes one item."""

    kind: Literal["rss"]
    #: The feed's address.
    url: str
    #: What the entries are (a feed of tenders can say ``tender``).
    item_kind: Kind = Kind.FEED_ENTRY
    #: The body that published the feed; defaults to the feed's own title.
    publisher: str | None = None
    #: Decode the body with this charset, whatever the server or the document says.
    encoding: str | None = None

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                codecs.lookup(value)
            except LookupError as exc:
                raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Fetch the feed (conditionally) and return its entries as items."""
        conditional = _conditional_headers(cursor)
        response = await fetch(http, self.url, headers=conditional)
        if response.status_code == 304:
            if not conditional:  # "not modified" since nothing: no answer at all
                raise SourceError(f"{self.url}: HTTP 304 to a request that was not conditional")
            return Batch(items=[], cursor=cursor, complete=False)
        content_type = response.headers.get("content-type")
        try:
            feed = parse_feed(response.content, content_type, encoding=self.encoding)
        except RECORD_ERRORS as exc:
            raise SourceError(f"{self.url}: unreadable feed: {type(exc).__name__}: {exc}") from exc
        _check(feed, self.url)
        title = feed.get("feed", {}).get("title")
        publisher = self.publisher or clean_text(title if isinstance(title, str) else None) or None
        items, skipped = parse_each(feed.entries, lambda e: self._item(e, publisher), self.url)
        return Batch(
            items=_dedupe(items), cursor=_validators(response), complete=False, skipped=skipped
        )

    def _item(self, entry: Any, publisher: str | None) -> Item:
        summary = entry.get("summary") or _first_content(entry)
        return Item(
            kind=self.item_kind,
            key=entry_key(entry),
            title=clean_text(entry.get("title")),
            description=clean_text(summary),
            publisher=publisher,
            published_at=_utc(_plain(entry, "published_parsed") or _plain(entry, "updated_parsed")),
            deadline=_utc(entry.get("expired_parsed")),
            url=(entry.get("link") or "").strip() or None,
            tags=tuple(t for t in (tag.get("term") for tag in entry.get("tags", [])) if t),
            raw=_raw(entry),
        )


def parse_feed(body: bytes, content_type: str | None, *, encoding: str | None = None) -> Any:
    """Parse feed bytes with feedparser after repairing what breaks it.

    ``encoding`` forces a charset. Otherwise UTF-16 without a byte-order mark
    (NUL bytes, as gov.il serves) is decoded first, and leading white space
    before ``<?xml`` is dropped. The HTTP ``content_type`` is passed on so its
    charset wins over the document's declaration.
    """
    text: str | None = None
    if encoding:
        text = body.decode(encoding, errors="replace")
    elif (utf16 := _utf16_without_bom(body)) is not None:
        text = body.decode(utf16, errors="replace")
    if text is not None:
        return feedparser.parse(text.lstrip().encode("utf-8"), response_headers=_type(_UTF8_XML))
    return feedparser.parse(body.lstrip(), response_headers=_type(content_type))


def _check(feed: Any, url: str) -> None:
    # An HTML error page or a cut-off document must fail the poll, not read as "no entries".
    if feed.entries:
        if feed.bozo:
            logger.warning("%s: ill-formed feed, entries kept: %r", url, feed.bozo_exception)
        return
    # feedparser leaves ``version`` out altogether for an empty body.
    if not feed.get("version"):
        reason = feed.get("bozo_exception") or "an empty body"
        raise SourceError(f"{url}: not an RSS or Atom document ({reason!r})")
    # A charset mismatch alone still parsed the whole document; anything else may have cut it.
    if feed.bozo and not isinstance(feed.bozo_exception, _HARMLESS):
        raise SourceError(f"{url}: ill-formed feed with no entries: {feed.bozo_exception!r}")


def entry_key(entry: Any) -> str:
    """Return an entry's identity: its id, else its normalised link, else a hash."""
    if entry_id := (entry.get("id") or "").strip():
        return str(entry_id)
    if link := (entry.get("link") or "").strip():
        try:
            return _normalise_link(link)
        except ValueError:  # urllib refuses "http://[::1"; the link is still an identity
            return str(link)
    basis_fields = [entry.get("title", ""), entry.get("published", "")]
    if not any(basis_fields):
        # Nothing else tells such entries apart; without this they would collapse into one.
        basis_fields.append(entry.get("summary", ""))
    basis = json.dumps(basis_fields, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(basis.encode()).hexdigest()[:32]


def _utf16_without_bom(body: bytes) -> str | None:
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" not in body[:64]:
        return None
    # ASCII markup in UTF-16 puts the NUL after the character (LE) or before it (BE).
    return "utf-16-be" if body[:1] == b"\x00" else "utf-16-le"


def _type(content_type: str | None) -> dict[str, str]:
    return {"content-type": content_type} if content_type else {}


def _normalise_link(link: str) -> str:
    parts = urlsplit(link)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    query = [(k, v) for k, v in query if not k.lower().startswith(_TRACKING_PREFIXES)]
    netloc = parts.netloc.lower()
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", urlencode(query), ""))


def _first_content(entry: Any) -> str:
    content = entry.get("content") or []
    return str(content[0].get("value", "")) if content else ""


def _utc(parsed: time.struct_time | None) -> datetime | None:
    # feedparser normalises every date it understands to a UTC struct_time.
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):  # a year the platform cannot represent
        return None


def _raw(entry: Any) -> dict[str, Any]:
    fields = ("id", "link", "title", "published", "updated", "expired", "author", "summary")
    return {name: str(value) for name in fields if (value := _plain(entry, name))}


def _plain(entry: Any, name: str) -> Any:
    # FeedParserDict.get("updated") falls back to "published" with a DeprecationWarning.
    return dict.get(entry, name)


def _dedupe(items: Any) -> list[Item]:
    # A feed can repeat an entry (or a guid) within one document; keep the first.
    seen: dict[str, Item] = {}
    for item in items:
        seen.setdefault(item.key, item)
    return list(seen.values())


def _conditional_headers(cursor: str | None) -> dict[str, str]:
    try:
        saved = json.loads(cursor) if cursor else {}
    except ValueError:
        return {}
    headers = {}
    if isinstance(saved, dict):
        if etag := saved.get("etag"):
            headers["If-None-Match"] = str(etag)
        if modified := saved.get("last_modified"):
            headers["If-Modified-Since"] = str(modified)
    return headers


def _validators(response: httpx.Response) -> str | None:
    saved = {
        "etag": response.headers.get("etag"),
        "last_modified": response.headers.get("last-modified"),
    }
    saved = {name: value for name, value in saved.items() if value}
    return json.dumps(saved, sort_keys=True) if saved else None
