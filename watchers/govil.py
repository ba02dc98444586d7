"""gov.il collector results: calls for bids (קולות קוראים) and support criteria.

``GET {base_url}{collector_path}?CollectorType=rfp&officeId=&culture=he&skip=&limit=``
(sources.md §4), paged by ``skip``/``limit`` until ``skip >= total`` or an empty
page (a short page only when no total is given, as the server may cap ``limit``),
or ``max_pages`` (then the batch is not ``complete``).

**No response has been recorded; the mapper is built on these assumptions**,
taken from public scrapers of this API (Budget Key's Ministry of Health
scraper reads ``results``, ``url``, ``title``, ``description`` and
``tags.metaData`` / ``tags.promotedMetaData`` labels such as ``תאריך פרסום``
and ``תאריך אחרון להגשה``, each a list of ``{"title": value}``):

* the results list is ``results`` (or ``Results``, ``items``, ``data``, or the
  body itself); the count is ``total`` (or ``Total``, ``TotalResults``);
* field names are matched case-insensitively (``title`` = ``Title``);
* a value is read from the record first, then from the tag labels; a label
  value may be a string, ``{"title": …}``, or a list of either (joined by ``; ``);
* the key is ``urlName``, else ``id``, else ``url``; a record with none is skipped;
* dates are ``DD.MM.YYYY`` (optionally with an hour) or ISO, in Israel time.

**The 2026 move** (not verified): the API is reported at
``openapi-gc.digital.gov.il`` behind an ``x-client-id`` header whose public
value gov.il's web app reads from ``client-config.js``. Set ``base_url`` and
``collector_path`` to the new address and ``client_config_url`` to that script;
the id is read from it on every poll, never stored in the config.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel, ConfigDict, Field

from agent.errors import SourceError
from agent.models import Item, Kind
from watchers.base import Batch, SourceSettings, fetch, fetch_json
from watchers.parsing import clean_text, parse_date

logger = logging.getLogger(__name__)

_RESULTS = ("results", "items", "data")
_TOTALS = ("total", "totalresults", "totalcount", "count")
#: ``clientId: "…"``, ``"x-client-id": "…"``, ``CLIENT_ID = '…'`` in a config script.
_CLIENT_ID = re.compile(r"""["']?(?:x[-_]?)?client[-_]?id["']?\s*[:=]\s*["']([^"']+)["']""", re.I)


class GovilFields(BaseModel):
    """Where each value is looked for: record field names, then tag labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: tuple[str, ...] = ("urlName", "id", "itemId", "url")
    title: tuple[str, ...] = ("title", "name")
    description: tuple[str, ...] = ("description", "summary")
    url: tuple[str, ...] = ("url", "link")
    publisher: tuple[str, ...] = ("office", "offices", "officeName", "משרד", "משרדים", "יחידה")
    published: tuple[str, ...] = ("publishDate", "date", "תאריך פרסום", "תאריך עדכון")
    deadline: tuple[str, ...] = ("deadline", "תאריך אחרון להגשה", "מועד אחרון להגשה")
    status: tuple[str, ...] = ("status", "סטטוס")
    tags: tuple[str, ...] = ("נושא", "נושאים", "תחום", "קהל יעד")


class GovilWatcher(SourceSettings):
    """Calls for bids or support criteria from a gov.il collector."""

    kind: Literal["govil"]
    #: The API host (``https://openapi-gc.digital.gov.il`` after the 2026 move).
    base_url: str = "https://www.gov.il"
    collector_path: str = "/CollectorsWebApi/api/DataCollector/GetResults"
    #: The site that relative ``url`` values belong to.
    site_url: str = "https://www.gov.il"
    #: One collector type, or several (sent as repeated ``CollectorType``).
    collector_type: str | tuple[str, ...] = "rfp"
    office_id: str | None = None
    culture: str = "he"
    #: More query parameters, e.g. ``{"Type": "<guid>", "Status": "<guid>"}``.
    params: dict[str, str] = Field(default_factory=dict)
    page_size: int = Field(default=50, ge=1, le=1000)
    #: A script holding the ``x-client-id`` value; read on each poll when set.
    client_config_url: str | None = None
    item_kind: Kind = Kind.CALL_FOR_BIDS
    fields: GovilFields = GovilFields()

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Read every page of the collector; the cursor is not used."""
        headers = await self._headers(http)
        records, complete = await self._read(http, headers)
        items: dict[str, Item] = {}
        for record in records:
            if (item := self._item(record)) is not None:
                items.setdefault(item.key, item)
        return Batch(items=list(items.values()), cursor=cursor, complete=complete)

    async def _headers(self, http: httpx.AsyncClient) -> dict[str, str]:
        if not self.client_config_url:
            return {}
        script = (await fetch(http, self.client_config_url)).text
        match = _CLIENT_ID.search(script)
        if not match:
            raise SourceError(f"{self.client_config_url}: no client id in the script")
        return {"x-client-id": match[1]}

    async def _read(
        self, http: httpx.AsyncClient, headers: dict[str, str]
    ) -> tuple[list[dict[str, Any]], bool]:
        url = f"{self.base_url.rstrip('/')}{self.collector_path}"
        records: list[dict[str, Any]] = []
        for _ in range(self.max_pages):
            params = self._query(skip=len(records))
            payload = await fetch_json(http, url, headers=headers or None, **params)
            page, total = _results(url, payload)
            records.extend(page)
            if total is not None:
                done = not page or len(records) >= total
            else:
                # Without a total a short page is the only end mark, though a limit may be capped.
                done = len(page) < self.page_size
            if done:
                return records, True
        return records, False

    def _query(self, skip: int) -> dict[str, Any]:
        types = (
            [self.collector_type] if isinstance(self.collector_type, str) else self.collector_type
        )
        query: dict[str, Any] = {"CollectorType": list(types), **self.params}
        if self.office_id:
            query["officeId"] = self.office_id
        return {**query, "culture": self.culture, "skip": skip, "limit": self.page_size}

    def _item(self, record: dict[str, Any]) -> Item | None:
        fields, labels = self.fields, _labels(record)
        key = _value(record, labels, fields.key)
        if not key:
            logger.warning("%s: a result has none of %s; skipped", self.base_url, fields.key)
            return None
        link = _value(record, labels, fields.url)
        return Item(
            kind=self.item_kind,
            key=key,
            title=_value(record, labels, fields.title),
            description=_value(record, labels, fields.description),
            publisher=_value(record, labels, fields.publisher) or None,
            published_at=parse_date(_value(record, labels, fields.published)),
            deadline=parse_date(_value(record, labels, fields.deadline)),
            status=_value(record, labels, fields.status) or None,
            url=urljoin(self.site_url, link) if link else None,
            tags=tuple(dict.fromkeys(_values(record, labels, fields.tags))),
            raw=record,
        )


def _results(url: str, payload: Any) -> tuple[list[dict[str, Any]], int | None]:
    """Find the results list and total in a collector answer, whatever their case."""
    if isinstance(payload, list):
        return [r for r in payload if isinstance(r, dict)], None
    if not isinstance(payload, dict):
        raise SourceError(f"{url}: the answer is neither an object nor a list")
    lowered = {str(k).lower(): v for k, v in payload.items()}
    found = next((lowered[k] for k in _RESULTS if isinstance(lowered.get(k), list)), None)
    if found is None:
        raise SourceError(f"{url}: no results list in the answer ({', '.join(payload)})")
    total = next((lowered[k] for k in _TOTALS if isinstance(lowered.get(k), int)), None)
    return [r for r in found if isinstance(r, dict)], total


def _labels(record: dict[str, Any]) -> dict[str, Any]:
    """Merge ``tags.metaData`` and ``tags.promotedMetaData`` (any case) into one lookup."""
    tags = _lower(record).get("tags")
    merged: dict[str, Any] = {}
    for group in _lower(tags).values() if isinstance(tags, dict) else ():
        if isinstance(group, dict):
            merged.update(_lower(group))
    return merged


def _values(record: dict[str, Any], labels: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    """Return the texts of the first name present in the record, else in the labels."""
    fields = _lower(record)
    for name in names:
        value = fields.get(name.lower(), labels.get(name.lower()))
        if texts := _texts(value):
            return texts
    return []


def _value(record: dict[str, Any], labels: dict[str, Any], names: tuple[str, ...]) -> str:
    return "; ".join(_values(record, labels, names))


def _texts(value: Any) -> list[str]:
    """Flatten a string, a ``{"title": …}`` or a list of them into texts."""
    if isinstance(value, list):
        return [text for part in value for text in _texts(part)]
    if isinstance(value, dict):
        inner = _lower(value)
        value = next((inner[k] for k in ("title", "name", "value") if inner.get(k)), None)
    text = clean_text(str(value)) if value is not None and not isinstance(value, bool) else ""
    return [text] if text else []


def _lower(mapping: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in mapping.items()} if isinstance(mapping, dict) else {}
