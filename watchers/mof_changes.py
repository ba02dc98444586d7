"""Ministry of Finance budget changes (העברות תקציביות), one item per transaction.

The MoF publishes change lines in CSV files named
``BudgetChanges_{approv|vaada}_data_DDMMYYYY.csv``, linked from a gov.il page
that is built by JavaScript; the links are read from gov.il's ContentPage API
(``watchers/mof_discovery.py``), or listed in ``urls``. ``approv`` files hold
approved changes, ``vaada`` files requests still pending before the Knesset
Finance Committee. Lines are grouped into transactions keyed with Budget Key's
``transaction_id`` (``2014/01-004``; balancing requests merged, see
``watchers/mof_transactions.py``). A transaction moving from a ``vaada`` file to
an ``approv`` file turns from ``pending`` to ``approved``. There are no
validators, so the cursor is a hash of the bodies read; re-reading an unchanged
file yields the same items again. Malformed rows (and transactions that cannot
become items) are skipped and counted in ``Batch.skipped``.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

import httpx
from pydantic import Field, field_validator

from agent.models import Item, Kind
from watchers.base import Batch, SourceSettings, fetch, parse_each
from watchers.mof_budget import Budget, read_budget
from watchers.mof_csv import Line, decode, read_lines, unpack
from watchers.mof_discovery import CONTENT_PAGE_URL, discover, file_name
from watchers.mof_transactions import Transaction, group
from watchers.parsing import ISRAEL

_FILE_DATE = re.compile(r"_(\d{2})(\d{2})(\d{4})\.csv$", re.IGNORECASE)


class MofChangesWatcher(SourceSettings):
    """Budget-change transactions from the Ministry of Finance's CSV files."""

    kind: Literal["mof_changes"]
    #: gov.il's ContentPage API for the page that links the current files; read only
    #: when ``urls`` is empty. (The page itself has no links without JavaScript.)
    discovery_url: str = CONTENT_PAGE_URL
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
        urls = list(self.urls) or await discover(http, self.discovery_url)
        digest = hashlib.sha256()
        files: list[tuple[str, list[Line]]] = []
        skipped = 0
        for url in urls:
            body = await _download(http, url)
            digest.update(body)
            sheet = read_lines(decode(body, self.encoding, url), url, pending=is_pending(url))
            files.append((url, sheet.lines))
            skipped += len(sheet.skipped)
        budget = Budget()
        if self.budget_url:
            body = await _download(http, self.budget_url)
            digest.update(body)
            budget = read_budget(decode(body, self.encoding, self.budget_url), self.budget_url)
        transactions = group(_choose(files))
        items, bad = parse_each(transactions, lambda t: _item(t, budget), ", ".join(urls))
        return Batch(items=items, cursor=digest.hexdigest(), complete=True, skipped=skipped + bad)


async def _download(http: httpx.AsyncClient, url: str) -> bytes:
    # Gunzipped by magic bytes: the files may be gzipped whatever the headers say.
    return unpack((await fetch(http, url)).content, url)


def is_pending(url: str) -> bool:
    """Tell whether a file lists requests still before the committee (a ``vaada`` file)."""
    return "vaada" in file_name(url).lower()


def _choose(files: list[tuple[str, list[Line]]]) -> list[Line]:
    """Keep, per request, the lines of the one file that best states it.

    Weekly files repeat earlier requests; summing across files would count them
    twice. An approved file beats a pending one, then the newer file wins. Lines
    come out approved files first, in file order, as Budget Key reads them.
    """
    best: dict[str, tuple[bool, str, int]] = {}
    for order, (url, lines) in enumerate(files):
        rank = (not is_pending(url), _file_date(url), order)
        for line in lines:
            if line.request_id not in best or rank > best[line.request_id]:
                best[line.request_id] = rank
    ranked = sorted(enumerate(files), key=lambda pair: is_pending(pair[1][0]))
    return [
        line for order, (_, lines) in ranked for line in lines if best[line.request_id][2] == order
    ]


def _item(transaction: Transaction, budget: Budget) -> Item:
    own = [line for line in transaction.lines if line.request_id == transaction.id]
    first = (own or transaction.lines)[0]
    changes = transaction.changes
    codes = [line.budget_code for line in changes if line.budget_code]
    days = [line.day for line in transaction.lines if line.day is not None]
    return Item(
        kind=Kind.BUDGET_CHANGE,
        key=transaction.id,
        title=first.title,
        description=_describe(changes),
        publisher=budget.sections.get(f"{first.leading_item:02d}") or None,
        amount=sum(line.net for line in changes),
        currency="ILS",
        budget_base=budget.base(first.year, codes),
        published_at=_israel_midnight(max(days)) if days else None,
        status="pending" if transaction.is_pending else "approved",
        url=first.url,
        budget_codes=tuple(dict.fromkeys(codes)),
        tags=tuple(dict.fromkeys(n for line in transaction.lines for n in line.change_names)),
        raw={
            "transaction_id": transaction.id,
            "requests": list(transaction.requests),
            "files": list(dict.fromkeys(line.url for line in transaction.lines)),
            "lines": [line.row for line in transaction.lines],
        },
    )


def _describe(lines: list[Line]) -> str:
    # One line per programme, its net change summed over the transaction's lines.
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for line in lines:
        totals[(line.budget_code or "", line.programme)] += line.net
    return "\n".join(
        f"{code} {name}: {amount:+,.0f} ₪".strip() for (code, name), amount in totals.items()
    )


def _israel_midnight(day: date) -> datetime | None:
    # MoF dates are Israel dates: the day starts at Israel midnight.
    try:
        return datetime.combine(day, time(0), tzinfo=ISRAEL).astimezone(UTC)
    except OverflowError:  # 1 January of year 1 is still year 0 in UTC
        return None


def _file_date(url: str) -> str:
    # DDMMYYYY in the name, compared as YYYYMMDD; undated files rank first.
    match = _FILE_DATE.search(file_name(url))
    return f"{match[3]}{match[2]}{match[1]}" if match else ""
