"""Budget Key (next.obudget.org) search results for one doc type, read incrementally.

``GET {base_url}/search/{doc_type}?q=&filter=&size=&offset=&order=`` answers
``{search_counts: {_current: {total_overall}}, search_results: [{source: doc}]}``, or, when
anything fails inside, HTTP 200 with ``{"error": "..."}`` (apies ``blueprint.py``
``search_handler``), which raises ``SourceError`` with that message.

**Paging.** The search is Elasticsearch ``from``/``size``, and ``from + size`` may not pass
10,000 (ES's default ``index.max_result_window``). Past it, ES fails that search inside the
``msearch`` apies sends, and apies answers an *empty page with a total of 0*
(apies ``controllers.py`` ``search``: a response without ``hits`` counts 0) — silence, not an
error. So the watcher never asks past the window, and a page that suddenly counts 0 after
the first one counted more raises.

**Incremental reading.** Results are ordered by ``-__last_modified_at``, the time Budget
Key's indexer last saw the document change (``processors/manage-revisions.py``); the cursor
is the newest such time seen. A poll reads newest first and stops at the first document
older than the cursor, so only what changed is read again. Documents stamped exactly at the
cursor are read again: one indexing run stamps all its documents with the same time and a
poll may land in the middle of one. A batch is ``complete`` only when the whole listing was
read (it fitted the window, and no document was skipped). When the window or ``max_pages``
ends a poll first, the older rest is not read, and a warning says how much; filters that
keep the listing under 10,000 (the shipped tenders source reads open tenders only) avoid it.

Keys are Budget Key's ``doc_id`` (``tenders/office/596915/04/2017``,
``national-budget-changes/2014/01-004``); a tender number may hold ``/`` or be ``none``, so
the id is never split. A document of an unexpected shape is logged and skipped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field, field_validator

from agent.errors import SourceError
from agent.models import Item
from watchers.base import Batch, SourceSettings, fetch_json
from watchers.budgetkey_docs import budget_change_fields, publication_fields, text

logger = logging.getLogger(__name__)

DocType = Literal["tenders", "calls_for_bids", "support_criteria", "national-budget-changes"]

#: Elasticsearch's default ``index.max_result_window``: ``offset + size`` may not pass it.
WINDOW = 10_000
#: When Budget Key's indexer last saw a document change (``manage-revisions.py``).
MODIFIED = "__last_modified_at"
#: Newest change first, so a poll can stop where the last one began.
ORDER = f"-{MODIFIED}"

#: What a bad document raises while it is mapped (pydantic's ValidationError is a ValueError).
_BAD_SHAPE = (TypeError, KeyError, ValueError, AttributeError, IndexError, ArithmeticError)


class End(Enum):
    """Why a poll stopped reading."""

    LISTING = "the whole listing was read"
    CURSOR = "reached what the last poll read"
    WINDOW = "reached Elasticsearch's 10,000-result window"
    PAGES = "reached max_pages"


@dataclass
class _Reading:
    """The documents a poll read and why it stopped."""

    docs: list[Any]
    end: End
    total: int | None


class BudgetKeyWatcher(SourceSettings):
    """Tenders, calls for bids, support criteria or budget changes from Budget Key's search."""

    kind: Literal["budgetkey"]
    #: The Budget Key API; human pages are ``/i/<doc_id>`` on the same host.
    base_url: str = "https://next.obudget.org"
    doc_type: DocType
    #: Free-text query (``q``); empty reads every document of the type.
    query: str = ""
    #: Budget Key filters, e.g. ``{"claim_date__gte": "now"}`` (a list of them means any),
    #: sent as the ``filter`` JSON.
    filters: dict[str, Any] | list[dict[str, Any]] = Field(default_factory=dict)
    page_size: int = Field(default=100, ge=1, le=1000)

    @field_validator("filters")
    @classmethod
    def _no_eq(cls, value: dict[str, Any] | list[dict[str, Any]]) -> Any:
        for group in value if isinstance(value, list) else [value]:
            for key in group:
                if key.split("#")[0].endswith("__eq"):
                    # apies turns __eq into an ES range {eq: …}, which ES refuses; the
                    # search then answers nothing at all, which would look like no news.
                    raise ValueError(
                        f"{key}: Budget Key cannot filter with __eq; write the bare field"
                    )
        try:
            json.dumps(value)
        except TypeError as exc:
            # A bare TOML date (2026-01-01) is not JSON: Budget Key wants "2026-01-01".
            raise ValueError(f"values must be strings, numbers or lists ({exc})") from exc
        return value

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Read what changed since ``cursor`` (everything without one), newest first."""
        since = _cursor_time(cursor)
        reading = await self._read(http, since)
        items, skipped = self._items(reading.docs)
        if reading.docs and not items:
            raise SourceError(
                f"{self._url}: none of the {len(reading.docs)} documents could be read"
            )
        if reading.end in (End.WINDOW, End.PAGES):
            logger.warning(
                "%s: read %d of %s documents (%s); older changes are not read",
                self._url,
                len(reading.docs),
                reading.total,
                reading.end.value,
            )
        complete = reading.end is End.LISTING and not skipped
        cursor = _newest(reading.docs) or cursor
        return Batch(items=items, cursor=cursor, complete=complete, skipped=skipped)

    @property
    def _url(self) -> str:
        return f"{self.base_url.rstrip('/')}/search/{self.doc_type}"

    async def _read(self, http: httpx.AsyncClient, since: datetime | None) -> _Reading:
        docs: list[Any] = []
        counted: int | None = None
        for _ in range(self.max_pages):
            size = min(self.page_size, WINDOW - len(docs))
            if size <= 0:
                return _Reading(docs, End.WINDOW, counted)
            payload = await fetch_json(http, self._url, **self._params(len(docs), size))
            page, total = _page(self._url, payload)
            _check_total(self._url, len(docs), counted, total)
            counted = total if counted is None else counted
            if since is not None and not docs and page and _modified(page[0]) is None:
                raise SourceError(f"{self._url}: documents carry no {MODIFIED} to poll by")
            fresh = _until(page, since)
            docs.extend(fresh)
            if len(fresh) < len(page):
                return _Reading(docs, End.CURSOR, counted)
            if _last_page(len(page), len(docs), total, size):
                return _Reading(docs, End.LISTING, counted)
        return _Reading(docs, End.PAGES, counted)

    def _params(self, offset: int, size: int) -> dict[str, Any]:
        params: dict[str, Any] = {"q": self.query, "size": size, "offset": offset, "order": ORDER}
        if self.filters:
            params["filter"] = json.dumps(self.filters, ensure_ascii=False)
        return params

    def _items(self, docs: list[Any]) -> tuple[list[Item], int]:
        """Map the documents, skipping (and logging) any of another shape."""
        items: dict[str, Item] = {}
        skipped = 0
        for doc in docs:
            try:
                item = self._item(doc)
            except _BAD_SHAPE as exc:
                skipped += 1
                name = type(exc).__name__
                logger.warning(
                    "%s: a document is skipped (%s: %s): %.300r", self._url, name, exc, doc
                )
                continue
            items.setdefault(item.key, item)  # offset paging can repeat a document
        return list(items.values()), skipped

    def _item(self, doc: Any) -> Item:
        if not isinstance(doc, dict):
            raise TypeError(f"a search result's source is a {type(doc).__name__}")
        if self.doc_type == "national-budget-changes":
            fields = budget_change_fields(doc)
        else:
            fields = publication_fields(doc, self.doc_type)
        site = urlsplit(self.base_url)
        return Item(**fields, url=f"{site.scheme}://{site.netloc}/i/{fields['key']}", raw=doc)


def _last_page(count: int, read: int, total: int | None, size: int) -> bool:
    """Say whether paging is done: a short page ends it only when no total is given.

    A server may cap ``size`` silently; trusting a short page then would cut the
    listing short and still call it complete.
    """
    if total is not None:
        return count == 0 or read >= total
    return count < size


def _page(url: str, payload: Any) -> tuple[list[Any], int | None]:
    """Return a search page's documents and ``total_overall``, or raise if it is not one."""
    if isinstance(payload, dict) and "error" in payload:
        raise SourceError(f"{url}: Budget Key answered an error: {payload['error']}")
    results = payload.get("search_results") if isinstance(payload, dict) else None
    if not isinstance(results, list):
        raise SourceError(f"{url}: no search_results list in the answer")
    counts = payload.get("search_counts")
    current = counts.get("_current") if isinstance(counts, dict) else None
    total = current.get("total_overall") if isinstance(current, dict) else None
    docs = [r.get("source") if isinstance(r, dict) else r for r in results]
    return docs, total if isinstance(total, int) else None


def _check_total(url: str, offset: int, counted: int | None, total: int | None) -> None:
    """Raise when a later page counts nothing: that is a search that failed inside apies."""
    if offset and counted and total == 0:
        raise SourceError(
            f"{url}: the page at offset {offset} counts 0 documents where the first counted "
            f"{counted}: the search failed inside Budget Key"
        )


def _until(page: list[Any], since: datetime | None) -> list[Any]:
    """The documents before the first one older than ``since`` (all of them without it)."""
    if since is None:
        return page
    for index, doc in enumerate(page):
        modified = _modified(doc)
        if modified is None or modified < since:  # ES sorts a missing date last
            return page[:index]
    return page


def _newest(docs: list[Any]) -> str | None:
    """The newest ``__last_modified_at`` among the documents, as Budget Key wrote it."""
    stamps = [(at, doc[MODIFIED]) for doc in docs if (at := _modified(doc)) is not None]
    return max(stamps)[1] if stamps else None


def _modified(doc: Any) -> datetime | None:
    """When the indexer last saw the document change; compared only with its own kind."""
    if not isinstance(doc, dict) or not isinstance(doc.get(MODIFIED), str):
        return None
    return _cursor_time(doc[MODIFIED])


def _cursor_time(value: str | None) -> datetime | None:
    """Read a ``__last_modified_at`` (``%Y-%m-%dT%H:%M:%SZ``) as a naive time; else ``None``."""
    try:
        return datetime.fromisoformat(text(value).removesuffix("Z")).replace(tzinfo=None)
    except ValueError:
        return None
