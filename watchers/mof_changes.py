"""Ministry of Finance budget changes (העברות תקציביות), one item per transaction.

The MoF publishes change lines in CSV files named
``BudgetChanges_{approv|vaada}_data_DDMMYYYY.csv``, linked from a gov.il page:
``approv`` files hold approved changes, ``vaada`` files requests still pending
before the Knesset Finance Committee. Lines are grouped into transactions keyed
``year/leading_item-req_code`` (``2014/01-004``), as Budget Key keys them. A
transaction moving from a ``vaada`` file to an ``approv`` file turns from
``pending`` to ``approved``. There are no validators, so the cursor is a hash
of the bodies read; re-reading an unchanged file yields the same items again.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections import defaultdict
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from pydantic import Field, field_validator

from agent.errors import SourceError
from agent.models import Item, Kind
from watchers.base import Batch, SourceSettings, fetch
from watchers.mof_csv import Budget, Line, decode, read_budget, read_lines

#: The gov.il page that links the current year's files.
DISCOVERY_URL = "https://www.gov.il/he/pages/budget-changes-current-year"
#: A change-lines file link (the ``explain`` files and XLSX copies are not read).
_DATA_LINK = re.compile(
    # Quoted (an href, or a JSON string): the bare file name in link text is no address.
    r"(?<=[\"'=])[^\"'\s<>]*?BudgetChanges_(?:approv|vaada)_data_[^\"'\s<>]*?\.csv",
    re.IGNORECASE,
)
_FILE_DATE = re.compile(r"_(\d{2})(\d{2})(\d{4})\.csv$", re.IGNORECASE)


class MofChangesWatcher(SourceSettings):
    """Budget-change transactions from the Ministry of Finance's CSV files."""

    kind: Literal["mof_changes"]
    #: The page whose links name the current files; read only when ``urls`` is empty.
    discovery_url: str = DISCOVERY_URL
    #: CSV files to read directly, instead of discovering them.
    urls: tuple[str, ...] = ()
    #: ``auto`` (UTF-8, else windows-1255) or a codec name.
    encoding: str = "auto"
    #: A MoF budget-items CSV (thousands of ₪) that gives each programme's budget.
    budget_url: str | None = None
    #: The MoF updates these files about weekly.
    every: timedelta = Field(default=timedelta(hours=6), gt=timedelta(0))

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        if value != "auto":
            try:
                codecs.lookup(value)
            except LookupError as exc:
                raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Read every current file and return one item per transaction."""
        urls = list(self.urls) or await self.discover(http)
        digest = hashlib.sha256()
        files: list[tuple[str, list[Line]]] = []
        for url in urls:
            response = await fetch(http, url)
            digest.update(response.content)
            files.append((url, read_lines(decode(response.content, self.encoding, url), url)))
        budget = Budget()
        if self.budget_url:
            response = await fetch(http, self.budget_url)
            digest.update(response.content)
            budget = read_budget(decode(response.content, self.encoding, self.budget_url))
        items = [_item(url, lines, budget) for url, lines in _transactions(files)]
        return Batch(items=items, cursor=digest.hexdigest(), complete=True)

    async def discover(self, http: httpx.AsyncClient) -> list[str]:
        """Return the change-lines CSV links on the discovery page."""
        response = await fetch(http, self.discovery_url)
        # Links may sit in embedded JSON, where "/" is written "\/".
        page = response.text.replace("\\/", "/")
        links = [urljoin(str(response.url), link) for link in _DATA_LINK.findall(page)]
        if not links:
            raise SourceError(f"{self.discovery_url}: no BudgetChanges_*_data_*.csv link found")
        return list(dict.fromkeys(links))


def is_pending(url: str) -> bool:
    """Tell whether a file lists requests still before the committee (a ``vaada`` file)."""
    return "vaada" in _file_name(url).lower()


def _transactions(files: list[tuple[str, list[Line]]]) -> list[tuple[str, list[Line]]]:
    """Pick, per transaction, the lines of the one file that best states it.

    Weekly files repeat earlier transactions; summing across files would count
    them twice. An approved file beats a pending one, then the newer file wins.
    """
    chosen: dict[str, tuple[tuple[bool, str, int], str, list[Line]]] = {}
    for order, (url, lines) in enumerate(files):
        grouped: dict[str, list[Line]] = defaultdict(list)
        for line in lines:
            grouped[line.transaction_id].append(line)
        rank = (not is_pending(url), _file_date(url), order)
        for transaction_id, group in grouped.items():
            if transaction_id not in chosen or rank > chosen[transaction_id][0]:
                chosen[transaction_id] = (rank, url, group)
    return [(url, group) for _, url, group in chosen.values()]


def _item(url: str, lines: list[Line], budget: Budget) -> Item:
    first = lines[0]
    codes = [line.budget_code for line in lines if line.budget_code]
    dates = [line.date for line in lines if line.date is not None]
    return Item(
        kind=Kind.BUDGET_CHANGE,
        key=first.transaction_id,
        title=first.title,
        description=_describe(lines),
        publisher=budget.sections.get(f"{first.leading_item:02d}") or None,
        amount=sum(line.net for line in lines),
        currency="ILS",
        budget_base=budget.base(first.year, codes),
        published_at=max(dates, default=None),
        status="pending" if is_pending(url) else "approved",
        url=url,
        budget_codes=tuple(dict.fromkeys(codes)),
        tags=tuple(dict.fromkeys(name for line in lines for name in line.change_names)),
        raw={"transaction_id": first.transaction_id, "file": url, "lines": [x.row for x in lines]},
    )


def _describe(lines: list[Line]) -> str:
    # One line per programme, its net change summed over the request's lines.
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for line in lines:
        totals[(line.budget_code or "", line.programme)] += line.net
    return "\n".join(
        f"{code} {name}: {amount:+,.0f} ₪".strip() for (code, name), amount in totals.items()
    )


def _file_name(url: str) -> str:
    return PurePosixPath(unquote(urlsplit(url).path)).name


def _file_date(url: str) -> str:
    # DDMMYYYY in the name, compared as YYYYMMDD; undated files rank first.
    match = _FILE_DATE.search(_file_name(url))
    return f"{match[3]}{match[2]}{match[1]}" if match else ""
