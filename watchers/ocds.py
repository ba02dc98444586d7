"""OCDS: release packages, record packages, bare releases and bare records.

One item per ``ocid`` per poll: a record gives its ``compiledRelease`` (linked
releases are not fetched); several releases of one ocid are merged by keeping
the latest ``date``, so a republished duplicate yields one item, not two. Pages
are followed through ``links.next`` (Prozorro) or ``next_page.uri`` (Armenia).
A malformed release or record is skipped and counted; an optional block of the
wrong type (``parties: 5``) is ignored rather than losing the whole release.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urljoin

import httpx

from agent.errors import SourceError
from agent.models import Item, Kind
from watchers.base import Batch, SourceSettings, fetch_json, parse_each
from watchers.parsing import clean_text, parse_amount, parse_date

logger = logging.getLogger(__name__)

#: Amounts at or below this are publishers' placeholders (0, 0.01), not values.
PLACEHOLDER_AMOUNT = 1.0
#: Keys that are storage or validation bookkeeping, not procurement data.
_IGNORED = frozenset({"_id", "packageInfo", "validationErrors"})
_OLDEST = datetime.min.replace(tzinfo=UTC)

#: A release and the date it carries.
_Dated = tuple[datetime, dict[str, Any]]


class OcdsWatcher(SourceSettings):
    """An OCDS endpoint or file; each contracting process (ocid) becomes one item."""

    kind: Literal["ocds"]
    #: The first page: a package, a record or a release.
    url: str
    #: The publisher's name, used when a release names no buyer.
    publisher_name: str | None = None
    #: Follow ``links.next`` / ``next_page.uri`` up to ``max_pages``.
    follow_next: bool = True
    #: What the processes are.
    item_kind: Kind = Kind.TENDER

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Read the pages and return one item per ocid, the latest state of each."""
        latest: dict[str, _Dated] = {}
        url, seen, skipped = self.url, set[str](), 0
        while True:
            seen.add(url)
            data = await fetch_json(http, url)
            releases, bad = releases_in(data, url)
            skipped += bad
            for release in releases:
                _keep_latest(latest, release)
            following = next_page(data, url)
            if following is None or following in seen:
                complete = True  # the last page, or a link back to a page already read
                break
            if not self.follow_next or len(seen) >= self.max_pages:
                complete = False
                break
            url = following
        items, bad = parse_each((r for _, r in latest.values()), self.to_item, self.url)
        return Batch(items=items, cursor=None, complete=complete, skipped=skipped + bad)

    def to_item(self, release: dict[str, Any]) -> Item:
        """Map one (compiled) release to an item."""
        tender = _dict(release.get("tender"))
        amount, currency = _amount(release)
        buyer = _buyer(release)
        procuring = _text(_get(tender, "procuringEntity", "name"))
        return Item(
            kind=self.item_kind,
            key=str(release["ocid"]),
            title=_title(release),
            description=_description(release),
            publisher=buyer or procuring or self.publisher_name,
            publishing_unit=procuring if procuring and buyer and procuring != buyer else None,
            amount=amount,
            currency=currency,
            published_at=parse_date(_text(release.get("date")), zone=UTC),
            deadline=parse_date(_text(_get(tender, "tenderPeriod", "endDate")), zone=UTC),
            status=_text(tender.get("status")) or None,
            url=_url(release),
            tags=_tags(release),
            raw=release,
        )


def releases_in(data: Any, url: str) -> tuple[list[dict[str, Any]], int]:
    """Return the releases (compiled ones for records) of any OCDS shape, cleaned.

    Also return how many entries were malformed and skipped. Releases without an
    ``ocid`` and records with only linked releases are left out, uncounted.
    """
    if not isinstance(data, dict):
        raise SourceError(f"{url}: expected an OCDS object, got {type(data).__name__}")
    if isinstance(data.get("records"), list):
        return parse_each(data["records"], _from_record, url)
    if "compiledRelease" in data or "versionedRelease" in data:
        return parse_each([data], _from_record, url)
    if isinstance(data.get("releases"), list):
        return parse_each(data["releases"], _cleaned, url)
    if "ocid" in data:
        return parse_each([data], _cleaned, url)
    raise SourceError(f"{url}: not an OCDS package, record or release")


def next_page(data: Any, url: str) -> str | None:
    """Return the absolute address of the next page, if the page names one."""
    links = _dict(data.get("links"))
    following = links.get("next") or _get(data, "next_page", "uri") or data.get("next_page")
    if not isinstance(following, str) or not following:
        return None
    try:
        return urljoin(url, following)
    except ValueError as exc:  # "http://[::1": urllib refuses it
        raise SourceError(f"{url}: unusable next-page link {following[:200]!r}: {exc}") from exc


def _cleaned(release: Any) -> dict[str, Any] | None:
    if not isinstance(release, dict):
        raise TypeError(f"a {type(release).__name__} where a release belongs")
    if not _text(release.get("ocid")):
        return None
    return {k: v for k, v in release.items() if k not in _IGNORED}


def _from_record(record: Any) -> dict[str, Any] | None:
    if not isinstance(record, dict):
        raise TypeError(f"a {type(record).__name__} where a record belongs")
    embedded = [r for r in _list(record.get("releases")) if isinstance(r, dict)]
    compiled = record.get("compiledRelease")
    if not isinstance(compiled, dict):
        # No compiled state: fall back to the newest release embedded in full.
        full = [r for r in embedded if "ocid" in r]
        return _cleaned(max(full, key=_date)) if full else None
    release = dict(compiled)
    release.setdefault("ocid", record.get("ocid"))
    tagged = [r for r in embedded if r.get("tag")]
    if tagged:
        # The compiled release is tagged "compiled"; the newest real tag says what happened.
        release["tag"] = max(tagged, key=_date)["tag"]
    return _cleaned(release)


def _keep_latest(latest: dict[str, _Dated], release: dict[str, Any]) -> None:
    ocid = str(release["ocid"])
    date = _date(release)
    # On equal dates the later copy wins: it is what the publisher served last.
    if ocid not in latest or date >= latest[ocid][0]:
        latest[ocid] = (date, release)


def _date(release: dict[str, Any]) -> datetime:
    return parse_date(_text(release.get("date")), zone=UTC) or _OLDEST


def _title(release: dict[str, Any]) -> str:
    candidates = (
        _get(release, "tender", "title"),
        _get(release, "planning", "budget", "description"),
        _first(release, "awards", "title"),
        _first(release, "contracts", "title"),
        _get(release, "tender", "description"),
        _first(release, "contracts", "description"),
        *(_dict(item).get("description") for item in _all_items(release)),
    )
    return next((clean_text(str(c)) for c in candidates if _text(c)), "")


def _description(release: dict[str, Any]) -> str:
    candidates = (
        _get(release, "tender", "description"),
        _first(release, "awards", "description"),
        _first(release, "contracts", "description"),
    )
    return next((clean_text(str(c)) for c in candidates if _text(c)), "")


def _buyer(release: dict[str, Any]) -> str:
    if name := _text(_get(release, "buyer", "name")):
        return name
    for party in _list(release.get("parties")):
        roles = _list(_dict(party).get("roles"))
        if "buyer" in roles and (name := _text(_dict(party).get("name"))):
            return name
    return ""


def _amount(release: dict[str, Any]) -> tuple[float | None, str | None]:
    values = [_get(release, "tender", "value"), _get(release, "planning", "budget", "amount")]
    for block in ("awards", "contracts"):
        values += [_dict(entry).get("value") for entry in _list(release.get(block))]
    for value in values:
        value = _dict(value)
        amount = parse_amount(value.get("amount"))
        if amount is not None and amount > PLACEHOLDER_AMOUNT:
            return amount, _text(value.get("currency")) or None
    return None, None


def _tags(release: dict[str, Any]) -> tuple[str, ...]:
    tags = [t for t in _list(release.get("tag")) if isinstance(t, str) and t != "compiled"]
    for entry in _all_items(release):
        item = _dict(entry)
        extra = _list(item.get("additionalClassifications"))
        for classification in [item.get("classification"), *extra]:
            if code := _text(_dict(classification).get("id")):
                tags.append(code)
    return tuple(dict.fromkeys(tags))


def _all_items(release: dict[str, Any]) -> list[Any]:
    items = list(_list(_get(release, "tender", "items")))
    for block in ("awards", "contracts"):
        for entry in _list(release.get(block)):
            items += _list(_dict(entry).get("items"))
    return items


def _url(release: dict[str, Any]) -> str | None:
    if uri := _text(release.get("uri")):
        return uri
    documents = [_dict(d) for d in _list(_get(release, "tender", "documents"))]
    notices = [d for d in documents if d.get("documentType") == "tenderNotice"]
    return next((_text(d["url"]) for d in notices + documents if _text(d.get("url"))), None)


def _get(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _first(release: dict[str, Any], block: str, field: str) -> Any:
    entries = release.get(block)
    return _dict(entries[0]).get(field) if isinstance(entries, list) and entries else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    # Publishers pad codes and titles with spaces, and send numbers where text belongs.
    return str(value).strip() if isinstance(value, str | int | float) else ""
