"""Rows of a CKAN datastore table; by default data.gov.il's tenders register.

The watcher reads ``package_show`` (for ``metadata_modified``, the cursor, and
the first datastore-active resource unless ``resource_id`` is set), then pages
``datastore_search`` with ``sort=_id`` and ``offset += len(records)``. It never
follows ``_links.next``: CKAN sends it relative and even on the last page, and
silently caps ``limit``. Paging stops on an empty page or ``offset >= total``;
the batch is ``complete`` only then, not when ``max_pages`` cut it short.

``_id`` is a row counter that shifts when the resource is re-uploaded, so an
item's key is made of columns: on data.gov.il ``{tender_type}/{מספר פרסום}/{מספר הליך}``,
the tail of Budget Key's ``doc_id`` (``office/596915/04/2017``), with ``none``
for an empty tender number. Values are text: dates are ``DD.MM.YYYY`` in
Asia/Jerusalem, amounts are plain (``222177.66``) or carry separators, and ``0``
means "unknown". A row of another shape (not an object, a list or object where a
value belongs, an impossible date) is logged and skipped, not the whole poll.

Both column sets of data.gov.il's registers are read (upstream.md "data.gov.il
CKAN registers"): the older one Budget Key maps (``naama_scraper.py``), and the
2026 exports: the tenders register has 17 columns (no decision, regulation,
approver, amount or currency; a basket name ``שם הסל`` and ``שם ספק זוכה``), the
exemptions register 22 (``שם ספק``, ``לינק לטקסטים``, ``מטבע`` = ``ILS``). A column
a register lacks is empty or absent, never an error.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.errors import SourceError
from agent.models import Item, Kind
from watchers.base import RECORD_ERRORS, Batch, SourceSettings, fetch_json
from watchers.parsing import clean_text, parse_amount, parse_date

logger = logging.getLogger(__name__)

#: ``סוג הליך`` → Budget Key's ``tender_type`` (sources.md §3); prefixes, as one is cut short.
TENDER_TYPES: tuple[tuple[str, str], ...] = (
    ("מכרז מרכזי", "central"),
    ("פניה לקבלת מידע", "central"),
    ("קול קורא להקמת", "central"),
    ("מכרז פומבי", "office"),
    ("התקשרות בפטור", "exemptions"),
    ("פרסום כוונה להתקשרות", "exemptions"),
    ("פרסום מיזם ללא כוונת רווח", "exemptions"),
    ("פרסום עקרונות הסכם מסגרת", "exemptions"),
    ("פרסום התקשרות המשטרה", "exemptions"),
)
_KIND_OF_TYPE = {"central": Kind.TENDER, "office": Kind.TENDER, "exemptions": Kind.EXEMPTION}
#: How the registers write currencies; anything else is kept as written.
_CURRENCIES = {'ש"ח': "ILS", "שקל": "ILS", "שקל חדש": "ILS", "ILS": "ILS", "NIS": "ILS"} | {
    "דולר": "USD", "USD": "USD", "אירו": "EUR", "יורו": "EUR", "EUR": "EUR",
}  # fmt: skip


class CkanColumns(BaseModel):
    """Which columns hold what; each field lists candidates, the first non-empty wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Joined with ``/`` into the key; the tender-type column is translated first.
    key: tuple[str, ...] = ("סוג הליך", "מספר פרסום", "מספר הליך")
    tender_type: tuple[str, ...] = ("סוג הליך",)
    publication_id: tuple[str, ...] = ("מספר פרסום",)
    title: tuple[str, ...] = ("שם הליך",)
    publisher: tuple[str, ...] = ("שם המשרד",)
    publishing_unit: tuple[str, ...] = ("שם יחידה מפרסמת",)
    published: tuple[str, ...] = ("תאריך פרסום",)
    deadline_date: tuple[str, ...] = ("תאריך אחרון להגשת השגות",)
    deadline_time: tuple[str, ...] = ("שעה אחרונה להגשת השגות",)
    amount: tuple[str, ...] = ("היקף כספי",)
    currency: tuple[str, ...] = ("מטבע",)
    tags: tuple[str, ...] = ("נושאים",)
    status: tuple[str, ...] = ("סטטוס", "מהות החלטה")
    #: Shown as ``column: value`` lines; both supplier spellings, as the registers differ.
    description: tuple[str, ...] = (
        "תקנה", "שם ספק זוכה", "שם ספק", "שם הסל", "מהות החלטה", "גורם מאשר", "לינק לטקסטים",
    )  # fmt: skip


class CkanWatcher(SourceSettings):
    """Rows of a CKAN datastore resource, such as data.gov.il's tenders and exemptions."""

    kind: Literal["ckan"]
    #: The portal; the action API is under ``{base_url}/api/3/action``.
    base_url: str = "https://data.gov.il"
    #: The dataset (``package_show`` id): gives the cursor and, unless set, the resource.
    dataset: str | None = "tenders"
    #: The datastore resource to read; when absent, the dataset's first active one.
    resource_id: str | None = None
    #: Every row's kind; when unset, it follows the tender-type column.
    item_kind: Kind | None = None
    #: The kind of a row whose tender type is not in the known table.
    fallback_kind: Kind = Kind.TENDER
    #: Rows asked per request (CKAN may cap it silently; paging does not rely on it).
    page_size: int = Field(default=1000, ge=1, le=32000)
    #: The human page of a row; ``{id}`` is its publication id.
    url_template: str | None = "https://mr.gov.il/ilgstorefront/he/p/{id}"
    columns: CkanColumns = CkanColumns()
    #: Sent instead of the agent's own User-Agent: Budget Key's client for data.gov.il
    #: sends ``datagov-external-client`` (BK ``common/data_gov_il.py``), which the portal's
    #: bot filter lets through.
    user_agent: str | None = "datagov-external-client"

    @model_validator(mode="after")
    def _has_a_table(self) -> CkanWatcher:
        if self.dataset is None and self.resource_id is None:
            raise ValueError("set dataset or resource_id")
        return self

    @property
    def _api(self) -> str:
        return f"{self.base_url.rstrip('/')}/api/3/action"

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Read the whole table; the cursor is the dataset's ``metadata_modified``."""
        resource_id, modified = self.resource_id, cursor
        if self.dataset is not None:
            package = await self._call(http, "package_show", id=self.dataset)
            modified = str(package.get("metadata_modified") or "") or None
            resource_id = resource_id or _active_resource(package, self.dataset)
        assert resource_id is not None  # the validator requires one of the two
        rows, complete = await self._read_rows(http, resource_id)
        items: dict[str, Item] = {}
        skipped = 0
        for row in rows:
            if (item := self._row_item(row)) is None:
                skipped += 1
                continue
            # Offset paging over a changing table can repeat a row: keep one per key.
            items.setdefault(item.key, item)
        if skipped and not items:
            raise SourceError(f"{self._api}/datastore_search: none of the {skipped} rows is valid")
        return Batch(
            items=list(items.values()), cursor=modified, complete=complete, skipped=skipped
        )

    def _row_item(self, row: Any) -> Item | None:
        """Map one row; a row of another shape is logged and skipped, not the whole poll."""
        try:
            if not isinstance(row, dict):
                raise ValueError(f"a {type(row).__name__}, not an object")
            identity = self.columns.publication_id or self.columns.key
            if not _first(row, identity):
                # A row without its identity cannot be told from the next.
                raise ValueError(f"no {' or '.join(identity)}")
            return self._item(row)
        except RECORD_ERRORS as exc:  # pydantic's ValidationError is a ValueError
            logger.warning("%s: a row is skipped (%s): %.300r", self._api, exc, row)
            return None

    async def _read_rows(self, http: httpx.AsyncClient, resource_id: str) -> tuple[list[Any], bool]:
        rows: list[Any] = []
        offset = 0
        for _ in range(self.max_pages):
            params = {"resource_id": resource_id, "limit": self.page_size, "offset": offset}
            result = await self._call(http, "datastore_search", **params, sort="_id")
            records = result.get("records")
            if not isinstance(records, list):
                raise SourceError(f"{self._api}/datastore_search: no records list")
            offset += len(records)
            rows.extend(records)
            total = result.get("total")
            if not records or (isinstance(total, int) and offset >= total):
                return rows, True
        return rows, False

    async def _call(self, http: httpx.AsyncClient, action: str, **params: Any) -> dict[str, Any]:
        url = f"{self._api}/{action}"
        headers = {"User-Agent": self.user_agent} if self.user_agent else None
        payload = await fetch_json(http, url, headers=headers, **params)
        if not isinstance(payload, dict) or payload.get("success") is not True:
            error = payload.get("error") if isinstance(payload, dict) else None
            message = error.get("message") if isinstance(error, dict) else error
            raise SourceError(f"{url}: CKAN success is not true: {message or 'no error given'}")
        result = payload.get("result")
        if not isinstance(result, dict):
            raise SourceError(f"{url}: CKAN result is not an object")
        return result

    def _item(self, row: dict[str, Any]) -> Item:
        columns = self.columns
        tender_type = _tender_type(_first(row, columns.tender_type))
        publication_id = _first(row, columns.publication_id)
        amount = parse_amount(_first(row, columns.amount))
        deadline_text = f"{_first(row, columns.deadline_date)} {_first(row, columns.deadline_time)}"
        return Item(
            kind=self.item_kind or _KIND_OF_TYPE.get(tender_type, self.fallback_kind),
            key=self._key(row, tender_type),
            title=_first(row, columns.title),
            description=_describe(row, columns.description),
            publisher=_first(row, columns.publisher) or None,
            publishing_unit=_first(row, columns.publishing_unit) or None,
            # The exemptions register writes 0 when the amount is not known.
            amount=amount or None,
            currency=_currency(_first(row, columns.currency)) if amount else None,
            published_at=parse_date(_first(row, columns.published)),
            deadline=parse_date(deadline_text),
            status=_first(row, columns.status) or None,
            url=self._url(publication_id),
            tags=_split_tags(_first(row, columns.tags)),
            raw=row,
        )

    def _key(self, row: dict[str, Any], tender_type: str) -> str:
        parts = (
            tender_type if column in self.columns.tender_type else _text(row.get(column))
            for column in self.columns.key
        )
        return "/".join(part or "none" for part in parts)

    def _url(self, publication_id: str) -> str | None:
        if not self.url_template or not publication_id:
            return None
        return self.url_template.format(id=publication_id)


def _active_resource(package: dict[str, Any], dataset: str) -> str:
    """Return the id of the first resource whose datastore is active."""
    resources = package.get("resources")
    for resource in resources if isinstance(resources, list) else []:
        if not isinstance(resource, dict) or resource.get("datastore_active") is not True:
            continue
        if isinstance(found := resource.get("id"), str) and found.strip():
            return found.strip()
    raise SourceError(f"dataset {dataset}: no resource has an active datastore")


def _tender_type(text: str) -> str:
    """Translate ``סוג הליך`` into Budget Key's ``tender_type``; keep unknown text."""
    return next((code for prefix, code in TENDER_TYPES if text.startswith(prefix)), text)


def _text(value: Any) -> str:
    """A cell as text; a list or an object where a value belongs is a bad row."""
    if isinstance(value, list | dict):
        raise ValueError(f"a {type(value).__name__} where a value belongs")
    return "" if value is None else clean_text(str(value))


def _first(row: dict[str, Any], columns: tuple[str, ...]) -> str:
    return next((text for column in columns if (text := _text(row.get(column)))), "")


def _describe(row: dict[str, Any], columns: tuple[str, ...]) -> str:
    lines = (f"{column}: {text}" for column in columns if (text := _text(row.get(column))))
    return "\n".join(dict.fromkeys(lines))


def _currency(text: str) -> str:
    return _CURRENCIES.get(text, text or "ILS")


def _split_tags(text: str) -> tuple[str, ...]:
    tags = (tag.strip() for tag in text.replace(";", ",").split(","))
    return tuple(dict.fromkeys(tag for tag in tags if tag))
