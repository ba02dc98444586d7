"""MofChangesWatcher against the recorded 2014 change lines, served as gov.il serves the files."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError

from agent.errors import SourceBlocked, SourceError
from agent.models import Item, Kind
from tests.conftest import FIXTURES, serve
from tests.fakes.mof import BLOB, CONTENT_API, PAGE, app
from watchers.base import Batch
from watchers.mof_changes import MofChangesWatcher
from watchers.mof_csv import read_lines
from watchers.mof_transactions import group

VAADA = "BudgetChanges_vaada_data_01042014.csv"
APPROV = "BudgetChanges_approv_data_01052014.csv"
#: Requests 2014 that balance each other through the general reserve, by the id BK gives them.
MERGED = {
    "2014/15-002": ("2014/15-002", "2014/83-008"),
    "2014/30-005": ("2014/13-006", "2014/30-005"),
    "2014/36-005": ("2014/04-006", "2014/36-005"),
    "2014/38-005": ("2014/13-007", "2014/38-005"),
    "2014/83-005": ("2014/12-004", "2014/83-005"),
}
#: 129 requests, five pairs merged.
TRANSACTIONS = 124


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """Run the gov.il / MoF server for the module."""
    with serve(app) as url:
        yield url


async def poll(http: httpx.AsyncClient, **settings: object) -> Batch:
    """Poll with a freshly configured watcher."""
    watcher = MofChangesWatcher.model_validate({"kind": "mof_changes", **settings})
    return await watcher.poll(http, None)


async def read(http: httpx.AsyncClient, url: str) -> dict[str, Item]:
    """Poll one file and index its items by key."""
    return by_key(await poll(http, urls=[url]))


def by_key(batch: Batch) -> dict[str, Item]:
    """Index a batch's items by key."""
    return {item.key: item for item in batch.items}


def comparable(items: dict[str, Item]) -> dict[str, dict[str, object]]:
    """Drop what names the file (URL, raw cells) to compare two copies of the same lines."""
    return {key: item.model_dump(exclude={"url", "raw"}) for key, item in items.items()}


async def test_the_weekly_file_gives_one_item_per_transaction_in_shekels(
    base_url: str, http: httpx.AsyncClient
) -> None:
    batch = await poll(http, urls=[f"{base_url}{BLOB}/{APPROV}"])  # windows-1255, header row 4
    items = by_key(batch)
    assert len(batch.items) == len(items) == TRANSACTIONS
    assert batch.complete
    assert {item.kind for item in batch.items} == {Kind.BUDGET_CHANGE}
    assert {item.currency for item in batch.items} == {"ILS"}
    president = items["2014/01-004"]
    assert president.title == "קליטת 80% מהעודפים"
    assert president.amount == 7_128_000.0  # "6,830" + 298 thousand
    assert president.budget_codes == ("00015101", "00015102")
    assert president.description == (
        "00015101 נשיא המדינה: +6,830,000 ₪\n00015102 נשיאי המדינה לשעבר: +298,000 ₪"
    )
    assert president.tags == ("הודעה לועדה", "עודפים")
    assert president.status == "approved"
    assert len(president.raw["lines"]) == 2
    assert president.raw["lines"][0]["שם תוכנית"] == "נשיא המדינה"
    assert '00055108 פעולות בחו"ל: +1,799,000 ₪' in items["2014/05-003"].description.splitlines()


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param("encoding=utf-8&layout=recorded", id="the recorded UTF-8 copy, header row 1"),
        pytest.param("excel=1", id='every cell in Excel\'s ="..." escape'),
        pytest.param("pad=1", id="codes padded to 8 digits"),
        pytest.param("excel=1&pad=1", id="padded codes in Excel escapes"),
        pytest.param("gzip=1", id="a gzipped body served as text/csv"),
        pytest.param("gzip=2", id="a gzipped file sent with Content-Encoding gzip"),
        pytest.param("columns=spaced", id="' שנה', 'מספר הסעיף', 'מספר תוכנית', 'סכום השינוי: …'"),
        pytest.param("columns=short", id="'סעיף' for the leading item"),
        pytest.param("dates=dmy", id="dates as %d/%m/%Y"),
        pytest.param("dates=iso", id="dates as ISO"),
        pytest.param("dates=mdy", id="dates as %m/%d/%y"),
    ],
)
async def test_every_documented_file_variant_gives_the_same_items(
    base_url: str, http: httpx.AsyncClient, variant: str
) -> None:
    weekly = await read(http, f"{base_url}{BLOB}/{APPROV}")
    other = await read(http, f"{base_url}{BLOB}/{APPROV}?{variant}")
    assert len(other) == TRANSACTIONS
    assert comparable(other) == comparable(weekly)


@pytest.mark.parametrize("dates", ["", "dates=dmy", "dates=iso", "dates=mdy"])
async def test_dates_are_israel_dates_in_utc_in_every_form(
    base_url: str, http: httpx.AsyncClient, dates: str
) -> None:
    items = await read(http, f"{base_url}{BLOB}/{APPROV}?{dates}")
    # 27-ינו-14 = 27/01/2014 = 01/27/14; 08-אפר-14 = 08/04/2014 = 04/08/14, never 4 August.
    assert items["2014/01-001"].published_at == datetime(2014, 1, 26, 22, 0, tzinfo=UTC)
    assert items["2014/01-004"].published_at == datetime(2014, 3, 18, 22, 0, tzinfo=UTC)
    assert items["2014/02-001"].published_at == datetime(2014, 4, 7, 21, 0, tzinfo=UTC)  # DST


async def test_balancing_requests_are_one_transaction_with_budget_keys_id(
    base_url: str, http: httpx.AsyncClient
) -> None:
    items = await read(http, f"{base_url}{BLOB}/{APPROV}")
    merged = {key: tuple(item.raw["requests"]) for key, item in items.items()}
    assert {key: value for key, value in merged.items() if len(value) > 1} == MERGED
    absorbed = {request for requests in MERGED.values() for request in requests} - set(MERGED)
    assert absorbed & set(items) == set()
    misshapen = [key for key in items if not re.fullmatch(r"\d{4}/\d{2}-\d{3}", key)]
    assert (len(items), misshapen) == (TRANSACTIONS, [])
    # 36-005 takes from the reserve what 04-006 gives it: the reserve lines are left out.
    moved = items["2014/36-005"]
    assert moved.budget_codes == ("00046001", "00366001")
    assert (
        moved.description
        == "00046001 מנהלת השירות: -29,821,000 ₪\n00366001 מנהלת השירות: +29,821,000 ₪"
    )
    assert moved.amount == 0.0
    assert len(moved.raw["lines"]) == 4
    assert items["2014/15-002"].title == items["2014/15-002"].raw["lines"][0]["תיאור בקשה"]


def test_a_search_over_budget_leaves_requests_ungrouped_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = (FIXTURES / "budgetkey" / "budget-changes" / "mof_changes-2014.csv").read_text()
    lines = read_lines(text, "mof_changes-2014.csv", pending=False).lines
    assert len(group(lines)) == TRANSACTIONS
    with caplog.at_level(logging.WARNING, logger="watchers.mof_transactions"):
        alone = group(lines, budget=0)
    assert len(alone) == TRANSACTIONS + len(MERGED)
    assert sorted(r.getMessage() for r in caplog.records) == [
        "2014-03-30: 2 reserve lines left ungrouped: search too long",
        "2014-04-07: 6 reserve lines left ungrouped: search too long",
        "2014-04-23: 5 reserve lines left ungrouped: search too long",
    ]


async def test_a_request_moves_from_pending_to_approved(
    base_url: str, http: httpx.AsyncClient
) -> None:
    pending = await poll(http, urls=[f"{base_url}{BLOB}/{VAADA}?only=1-4"])
    [request] = pending.items
    assert (request.key, request.status) == ("2014/01-004", "pending")
    # The vaada file's date column is "תאריך משלוח לוועדה".
    assert request.published_at == datetime(2014, 3, 18, 22, 0, tzinfo=UTC)
    approved = (await read(http, f"{base_url}{BLOB}/{APPROV}"))["2014/01-004"]
    assert approved.status == "approved"
    assert approved.amount == request.amount == 7_128_000.0


async def test_a_request_in_both_files_counts_once_and_is_approved(
    base_url: str, http: httpx.AsyncClient
) -> None:
    urls = [f"{base_url}{BLOB}/{VAADA}?only=1-4", f"{base_url}{BLOB}/{APPROV}"]
    item = by_key(await poll(http, urls=urls))["2014/01-004"]
    assert (item.status, item.amount) == ("approved", 7_128_000.0)
    assert item.raw["files"] == [f"{base_url}{BLOB}/{APPROV}"]


async def test_discovery_reads_the_data_files_the_content_api_links(
    base_url: str, http: httpx.AsyncClient
) -> None:
    api = f"{base_url}{CONTENT_API}?culture=he&files={VAADA},{APPROV}"
    batch = await poll(http, discovery_url=api)  # the explain and XLSX links would answer 404
    assert len(batch.items) == TRANSACTIONS
    assert {item.status for item in batch.items} == {"approved"}
    assert {item.url for item in batch.items} == {f"{base_url}{BLOB}/{APPROV}"}
    only_pending = await poll(http, discovery_url=f"{base_url}{CONTENT_API}?files={VAADA}")
    assert len(only_pending.items) == TRANSACTIONS
    assert {item.status for item in only_pending.items} == {"pending"}


async def test_explicit_urls_are_read_without_discovery(
    base_url: str, http: httpx.AsyncClient
) -> None:
    batch = await poll(
        http,
        discovery_url=f"{base_url}{CONTENT_API}?blocked=1",  # never asked
        urls=[f"{base_url}{BLOB}/{VAADA}?only=1-4"],
    )
    assert [item.key for item in batch.items] == ["2014/01-004"]


async def test_a_malformed_row_is_skipped_and_logged_not_fatal(
    base_url: str, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="watchers.mof_csv"):
        items = await read(http, f"{base_url}{BLOB}/{APPROV}?malformed=1")
    weekly = await read(http, f"{base_url}{BLOB}/{APPROV}")
    assert comparable(items) == comparable(weekly)
    [warning] = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert "skipped 4 malformed rows (lines [7, 8, 9, 10])" in warning


async def test_the_budget_file_gives_the_programme_budget_and_the_ministry(
    base_url: str, http: httpx.AsyncClient
) -> None:
    batch = await poll(
        http,
        urls=[f"{base_url}{BLOB}/{APPROV}"],
        budget_url=f"{base_url}/budget/mof_budget20132014.csv?encoding=windows-1255",
    )
    item = by_key(batch)["2014/01-004"]
    assert item.budget_base == 39_206_000.0  # 2014 net: 36,736 + 2,470 thousand
    assert item.publisher == "נשיא המדינה ולשכתו"
    assert by_key(batch)["2014/02-001"].publisher == "הכנסת"


async def test_the_cursor_is_a_hash_of_what_was_read(
    base_url: str, http: httpx.AsyncClient
) -> None:
    first = await poll(http, urls=[f"{base_url}{BLOB}/{APPROV}"])
    again = await poll(http, urls=[f"{base_url}{BLOB}/{APPROV}"])
    other = await poll(http, urls=[f"{base_url}{BLOB}/{APPROV}?only=1-4"])
    assert first.cursor == again.cursor
    assert first.cursor != other.cursor


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        pytest.param(
            {"discovery_url": PAGE}, SourceError, "expected JSON, got HTML", id="the JS-built page"
        ),
        pytest.param(
            {"discovery_url": f"{CONTENT_API}?files="},
            SourceError,
            "no (approv|vaada)_data CSV link",
            id="a content page with no data links",
        ),
        pytest.param(
            {"discovery_url": f"{CONTENT_API}?shape=empty"},
            SourceError,
            "no contentMain.htmlContents[].sectionData",
            id="a content answer of another shape",
        ),
        pytest.param(
            {"discovery_url": f"{CONTENT_API}?blocked=1"}, SourceBlocked, "blocked", id="a 403"
        ),
        pytest.param({"urls": [f"{BLOB}/{APPROV}?status=500"]}, SourceError, "HTTP 500", id="500"),
        pytest.param(
            {"urls": [f"{BLOB}/{APPROV}?gzip=cut"]}, SourceError, "broken gzip", id="cut gzip"
        ),
        pytest.param(
            {"urls": ["/budget/mof_budget20132014.csv"]},
            SourceError,
            "no budget-changes header",
            id="not a changes file",
        ),
        pytest.param(
            {"urls": [f"{BLOB}/{APPROV}?only=99-1&malformed=1"]},
            SourceError,
            "none of the 4 data rows",
            id="nothing but malformed rows",
        ),
        pytest.param(
            {"urls": [f"{BLOB}/{APPROV}"], "budget_url": PAGE},
            SourceError,
            "no budget-items header",
            id="a budget file that is not one",
        ),
        pytest.param(
            {"urls": [f"{BLOB}/{APPROV}"], "encoding": "utf-8"},
            SourceError,
            "not utf-8",
            id="bytes that are not the configured encoding",
        ),
    ],
)
async def test_a_failed_read_raises_instead_of_looking_empty(
    base_url: str,
    http: httpx.AsyncClient,
    settings: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    absolute = {
        name: (
            [f"{base_url}{u}" for u in value]
            if isinstance(value, list)
            else f"{base_url}{value}"
            if name.endswith("url")
            else value
        )
        for name, value in settings.items()
    }
    with pytest.raises(error, match=re.escape(message)):
        await poll(http, **absolute)


def test_an_unknown_encoding_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="unknown encoding"):
        MofChangesWatcher.model_validate({"kind": "mof_changes", "encoding": "hebrew-ish"})


def test_the_defaults_point_at_gov_ils_content_api() -> None:
    watcher = MofChangesWatcher.model_validate({"kind": "mof_changes"})
    assert watcher.discovery_url == (
        "https://www.gov.il/ContentPageWebApi/api/content-pages/"
        "budget-changes-current-year?culture=he"
    )
    assert watcher.urls == ()
