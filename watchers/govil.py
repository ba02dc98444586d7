"""gov.il collector results: calls for bids (קולות קוראים) and support criteria.

Since May 2026 the collectors answer on an API gateway,
``https://openapi-gc.digital.gov.il/pub/cio/govil/rest/collectors/v1/api/DataCollector/GetResults``,
which refuses a request without the public ``x-client-id`` (``FailedToResolveAPIKey``)
or without ``Origin: https://www.gov.il`` (``RF-OriginError``). The id is read on
every poll from gov.il's own ``client-config.js`` (``window['govilRunConfig'] =
{"dataCollectorWebApi": …, "clientId": …}``), never stored in the config. The old
``www.gov.il/CollectorsWebApi`` address answers the site's HTML shell: that raises
``SourceError``, never "no items" (upstream.md "gov.il collector").

The default query is Budget Key's for calls for bids (BK ``calls_for_bids/m_tmicha.py``,
``negev_galil.py``): ``CollectorType`` reports, rfp, drushim and publicsharing, the
``Type`` and ``Status`` GUIDs, ``culture``, ``skip``, ``limit``. The answer is
``{"total": n, "results": […]}``; ``skip`` grows by the results received (``limit``
on a full page; less if the server caps it) until ``total``, an empty page, or
``max_pages`` (then the batch is not ``complete``).

A result has ``url`` (relative to https://www.gov.il; the item key), ``title``,
``description`` and ``tags.metaData`` / ``tags.promotedMetaData``: labels such as
``משרד``, ``תאריך פרסום``, ``תאריך אחרון להגשה``, ``מספר``, each a list of
``{"title": value}``. Dates are ``DD.MM.YYYY`` in Israel time. A result of
another shape is logged and skipped; an answer of another shape raises.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal, NamedTuple
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import SourceError
from agent.models import Item, Kind
from watchers.base import RECORD_ERRORS, Batch, SourceSettings, fetch, load_json
from watchers.parsing import clean_text, parse_date

logger = logging.getLogger(__name__)

#: The collectors' API gateway since May 2026 (CECI ``.planning/docs/TRIBAL-KNOWLEDGE.md``).
GATEWAY = "https://openapi-gc.digital.gov.il/pub/cio/govil/rest/collectors/v1"
#: gov.il's own front-end configuration, which names the gateway and the public client id.
CLIENT_CONFIG = "https://www.gov.il/CollectorsWebApi/client-config.js"
#: The collector types Budget Key asks for calls for bids (BK ``m_tmicha.py``).
CALL_COLLECTORS = ("reports", "rfp", "drushim", "publicsharing")
#: Publication type "rfp", calls for bids (BK ``processors/gov_publications.py``).
CALLS_TYPE = "7159e036-77d5-44f9-a1bf-4500e6125bf1"
#: Publication type "supports", support criteria (BK ``processors/gov_publications.py``).
SUPPORTS_TYPE = "7b76d87f-d299-4019-8637-5f1de71c9523"
#: The ``Status`` Budget Key sends with calls for bids (its label is not published).
CALLS_STATUS = "c8ed2e3c-e5a9-4101-93f5-bae798c4ac1d"

_RUN_CONFIG = re.compile(r"""govilRunConfig['"]\s*\]\s*=\s*(\{.*?\})\s*;""", re.S)


class GovilLabels(BaseModel):
    """Which tag labels hold what; the first label present wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    publisher: tuple[str, ...] = ("משרד", "משרדים", "יחידה")
    published: tuple[str, ...] = ("תאריך פרסום", "תאריך עדכון")
    deadline: tuple[str, ...] = ("תאריך אחרון להגשה", "מועד אחרון להגשה")
    status: tuple[str, ...] = ("סטטוס",)
    tags: tuple[str, ...] = ("נושא", "נושאים", "תחום", "קהל יעד")


class _Label(BaseModel):
    title: str | None = None


class _Tags(BaseModel):
    # Named as the API spells them.
    metaData: dict[str, list[_Label]] | None = None
    promotedMetaData: dict[str, list[_Label]] | None = None


class _Result(BaseModel):
    """The part of a collector result that is read; the rest stays in ``raw``."""

    model_config = ConfigDict(str_strip_whitespace=True)

    url: str = Field(min_length=1)
    title: str
    description: str | None = None
    tags: _Tags | None = None

    def labels(self) -> dict[str, list[str]]:
        """Every label's texts, promoted labels first."""
        groups = (self.tags.promotedMetaData, self.tags.metaData) if self.tags else ()
        found: dict[str, list[str]] = {}
        for group in groups:
            for name, values in (group or {}).items():
                texts = [text for v in values if (text := clean_text(v.title))]
                if texts:
                    found.setdefault(name, texts)
        return found


class _Page(BaseModel):
    total: int
    results: list[Any]


class RunConfig(NamedTuple):
    """What gov.il's ``client-config.js`` says: the public client id and the API root."""

    client_id: str
    api: str | None


class GovilWatcher(SourceSettings):
    """Calls for bids or support criteria from a gov.il collector."""

    kind: Literal["govil"]
    #: The collectors API root.
    base_url: str = GATEWAY
    collector_path: str = "/api/DataCollector/GetResults"
    #: gov.il's script naming the public ``x-client-id``, read on each poll; none sends no id.
    client_config_url: str | None = CLIENT_CONFIG
    #: The ``Origin`` the gateway requires; none sends no ``Origin``.
    origin: str | None = "https://www.gov.il"
    #: The site that relative ``url`` values belong to.
    site_url: str = "https://www.gov.il"
    #: One collector type, or several (sent as repeated ``CollectorType``).
    collector_type: str | tuple[str, ...] = CALL_COLLECTORS
    #: Sent as ``Type``: calls for bids by default, ``SUPPORTS_TYPE`` for support criteria.
    type_id: str | None = CALLS_TYPE
    #: Sent as ``Status``.
    status_id: str | None = CALLS_STATUS
    office_id: str | None = None
    culture: str = "he"
    #: More query parameters.
    params: dict[str, str] = Field(default_factory=dict)
    page_size: int = Field(default=50, ge=1, le=1000)
    item_kind: Kind = Kind.CALL_FOR_BIDS
    labels: GovilLabels = GovilLabels()

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Read every page of the collector; the cursor is not used."""
        run_config = await self._run_config(http)
        try:
            results, complete = await self._read(http, self._headers(run_config))
        except SourceError as exc:
            if moved := self._moved_to(run_config):
                # gov.il's own app follows the script: the API has likely moved again.
                note = f"; gov.il's client-config.js names the API {moved}: set base_url"
                raise type(exc)(f"{exc}{note}") from exc
            raise
        items: dict[str, Item] = {}
        skipped = 0
        for result in results:
            if (item := self._item(result)) is None:
                skipped += 1
                continue
            items.setdefault(item.key, item)
        if skipped and not items:
            raise SourceError(f"{self.base_url}: none of the {skipped} results is valid")
        return Batch(items=list(items.values()), cursor=cursor, complete=complete, skipped=skipped)

    async def _run_config(self, http: httpx.AsyncClient) -> RunConfig | None:
        if not self.client_config_url:
            return None
        response = await fetch(http, self.client_config_url)
        try:
            script = response.text
        except UnicodeError as exc:  # a charset the body does not match (UTF-16 with no BOM)
            raise SourceError(f"{self.client_config_url}: undecodable script: {exc}") from exc
        run_config = read_run_config(self.client_config_url, script)
        if moved := self._moved_to(run_config):
            logger.warning(
                "%s names the API %s, not %s", self.client_config_url, moved, self.base_url
            )
        return run_config

    def _moved_to(self, run_config: RunConfig | None) -> str | None:
        """The API root gov.il's script names, when it is not ``base_url``."""
        api = run_config.api if run_config else None
        return api if api and api != self.base_url.rstrip("/") else None

    def _headers(self, run_config: RunConfig | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if run_config:
            headers["x-client-id"] = run_config.client_id
        if self.origin:
            headers["Origin"] = self.origin
        return headers

    async def _read(
        self, http: httpx.AsyncClient, headers: dict[str, str]
    ) -> tuple[list[Any], bool]:
        url = f"{self.base_url.rstrip('/')}{self.collector_path}"
        results: list[Any] = []
        for _ in range(self.max_pages):
            page = _page(url, await _get_json(http, url, headers, self._query(len(results))))
            results.extend(page.results)
            if not page.results or len(results) >= page.total:
                return results, True
        return results, False

    def _query(self, skip: int) -> dict[str, Any]:
        types = (
            [self.collector_type] if isinstance(self.collector_type, str) else self.collector_type
        )
        query: dict[str, Any] = {"CollectorType": list(types)}
        chosen = {"officeId": self.office_id, "Type": self.type_id, "Status": self.status_id}
        query.update({name: value for name, value in chosen.items() if value})
        return {
            **query,
            **self.params,
            "culture": self.culture,
            "skip": skip,
            "limit": self.page_size,
        }

    def _item(self, raw: Any) -> Item | None:
        """Map one result; one of another shape is logged and skipped, not the whole poll."""
        try:
            return self._map(_Result.model_validate(raw), raw)
        except RECORD_ERRORS as exc:  # pydantic's ValidationError is a ValueError
            logger.warning("%s: a result is skipped (%s): %.300r", self.base_url, _reason(exc), raw)
            return None

    def _map(self, result: _Result, raw: dict[str, Any]) -> Item:
        labels, wanted = result.labels(), self.labels
        return Item(
            kind=self.item_kind,
            key=result.url,
            title=clean_text(result.title),
            description=clean_text(result.description),
            publisher="; ".join(_first(labels, wanted.publisher)) or None,
            published_at=parse_date(next(iter(_first(labels, wanted.published)), None)),
            deadline=parse_date(next(iter(_first(labels, wanted.deadline)), None)),
            status="; ".join(_first(labels, wanted.status)) or None,
            url=urljoin(self.site_url, result.url),
            tags=tuple(dict.fromkeys(_first(labels, wanted.tags))),
            raw=raw,
        )


def read_run_config(url: str, script: str) -> RunConfig:
    """Read the client id and API root from ``window['govilRunConfig'] = {…};``."""
    match = _RUN_CONFIG.search(script)
    if not match:
        raise SourceError(f"{url}: no govilRunConfig in the script")
    values = {
        key: found[1]
        for key in ("clientId", "dataCollectorWebApi")
        # JSON or a JavaScript object literal: read each key alone rather than parse it.
        if (found := re.search(rf"""["']?{key}["']?\s*:\s*["']([^"']*)["']""", match[1]))
    }
    if not values.get("clientId", "").strip():
        raise SourceError(f"{url}: govilRunConfig has no clientId")
    api = values.get("dataCollectorWebApi", "").strip().rstrip("/") or None
    return RunConfig(client_id=values["clientId"].strip(), api=api)


async def _get_json(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], params: dict[str, Any]
) -> Any:
    response = await fetch(http, url, headers=headers, **params)
    body = response.content.lstrip()
    if "html" in response.headers.get("content-type", "") or body[:1] == b"<":
        raise SourceError(
            f"{response.url}: an HTML page instead of the collector's JSON (since May 2026 "
            f"www.gov.il/CollectorsWebApi answers the site's shell; the API is {GATEWAY})"
        )
    return load_json(body, str(response.url))


def _first(labels: dict[str, list[str]], names: tuple[str, ...]) -> list[str]:
    """The texts of the first of ``names`` that is a label of the result."""
    return next((labels[name] for name in names if name in labels), [])


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc)


def _page(url: str, payload: Any) -> _Page:
    """Check the answer is ``{"total": n, "results": […]}``; anything else raises."""
    try:
        return _Page.model_validate(payload)
    except ValidationError as exc:
        keys = ", ".join(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
        raise SourceError(f"{url}: not a collector answer {{total, results}} (got {keys})") from exc
