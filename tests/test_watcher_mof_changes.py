"""MofChangesWatcher against the recorded 2014 changes file, served as the MoF serves it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError

from agent.errors import SourceBlocked, SourceError
from agent.models import Item, Kind
from tests.conftest import serve
from tests.fakes.mof import BLOB, app
from watchers.base import Batch
from watchers.mof_changes import MofChangesWatcher

VAADA = "BudgetChanges_vaada_data_01042014.csv"
APPROV = "BudgetChanges_approv_data_01052014.csv"
PAGE = "/he/pages/budget-changes-current-year"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """Run the MoF server for the module."""
    with serve(app) as url:
        yield url


async def poll(http: httpx.AsyncClient, **settings: object) -> Batch:
    """Poll with a freshly configured watcher."""
    watcher = MofChangesWatcher.model_validate({"kind": "mof_changes", **settings})
    return await watcher.poll(http, None)


def by_key(batch: Batch) -> dict[str, Item]:
    """Index a batch's items by key."""
    return {item.key: item for item in batch.items}


@pytest.mark.parametrize("encoding", ["utf-8", "windows-1255"])
async def test_the_2014_file_gives_129_transactions_in_either_encoding(
    base_url: str, http: httpx.AsyncClient, encoding: str
) -> None:
    url = f"{base_url}{BLOB}/{APPROV}?encoding={encoding}"
    batch = await poll(http, urls=[url])
    assert len(batch.items) == 129
    assert batch.complete
    assert {item.kind for item in batch.items} == {Kind.BUDGET_CHANGE}
    assert {item.currency for item in batch.items} == {"ILS"}
    assert by_key(batch)["2014/01-004"].title == "קליטת 80% מהעודפים"


async def test_windows_1255_and_utf8_copies_give_the_same_items(
    base_url: str, http: httpx.AsyncClient
) -> None:
    utf8 = await poll(http, urls=[f"{base_url}{BLOB}/{APPROV}"])
    hebrew = await poll(http, urls=[f"{base_url}{BLOB}/{APPROV}?encoding=windows-1255"])
    assert [i.model_dump(exclude={"url", "raw"}) for i in utf8.items] == [
        i.model_dump(exclude={"url", "raw"}) for i in hebrew.items
    ]


async def test_a_transaction_sums_its_lines_in_shekels(
    base_url: str, http: httpx.AsyncClient
) -> None:
    item = by_key(await poll(http, urls=[f"{base_url}{BLOB}/{APPROV}"]))["2014/01-004"]
    assert item.amount == 7_128_000.0  # "6,830" + 298 thousand
    assert item.budget_codes == ("00015101", "00015102")
    assert item.description == (
        "00015101 נשיא המדינה: +6,830,000 ₪\n00015102 נשיאי המדינה לשעבר: +298,000 ₪"
    )
    assert item.tags == ("הודעה לועדה", "עודפים")
    assert item.status == "approved"
    assert len(item.raw["lines"]) == 2


async def test_hebrew_month_dates_are_israel_dates_in_utc(
    base_url: str, http: httpx.AsyncClient
) -> None:
    items = by_key(await poll(http, urls=[f"{base_url}{BLOB}/{APPROV}"]))
    cut = items["2014/01-001"]
    assert cut.published_at == datetime(2014, 1, 26, 22, 0, tzinfo=UTC)  # 27-ינו-14
    assert cut.amount == -95_000.0
    assert cut.tags == ("אישור ועדה", "קיצוץ")
    assert items["2014/01-004"].published_at == datetime(2014, 3, 18, 22, 0, tzinfo=UTC)


async def test_a_request_moves_from_pending_to_approved(
    base_url: str, http: httpx.AsyncClient
) -> None:
    pending = await poll(http, urls=[f"{base_url}{BLOB}/{VAADA}?only=1-4"])
    [request] = pending.items
    assert (request.key, request.status) == ("2014/01-004", "pending")
    approved = by_key(await poll(http, urls=[f"{base_url}{BLOB}/{APPROV}"]))["2014/01-004"]
    assert approved.status == "approved"
    assert approved.amount == request.amount


async def test_a_request_in_both_files_counts_once_and_is_approved(
    base_url: str, http: httpx.AsyncClient
) -> None:
    urls = [f"{base_url}{BLOB}/{APPROV}", f"{base_url}{BLOB}/{VAADA}?only=1-4"]
    item = by_key(await poll(http, urls=urls))["2014/01-004"]
    assert (item.status, item.amount) == ("approved", 7_128_000.0)


async def test_discovery_reads_the_data_files_linked_from_the_page(
    base_url: str, http: httpx.AsyncClient
) -> None:
    page = f"{base_url}{PAGE}?files={VAADA},{APPROV}"
    batch = await poll(http, discovery_url=page)
    assert len(batch.items) == 129
    assert {item.status for item in batch.items} == {"approved"}
    assert batch.items[0].url == f"{base_url}{BLOB}/{APPROV}"
    only_pending = await poll(http, discovery_url=f"{base_url}{PAGE}?files={VAADA}")
    assert {item.status for item in only_pending.items} == {"pending"}


async def test_the_budget_file_gives_the_programme_budget_and_the_ministry(
    base_url: str, http: httpx.AsyncClient
) -> None:
    batch = await poll(
        http,
        urls=[f"{base_url}{BLOB}/{APPROV}?encoding=windows-1255"],
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
    ("settings", "error"),
    [
        pytest.param({"discovery_url": f"{PAGE}?files="}, SourceError, id="a page with no links"),
        pytest.param({"discovery_url": f"{PAGE}?blocked=1"}, SourceBlocked, id="a blocked page"),
        pytest.param({"urls": [f"{BLOB}/{APPROV}?status=500"]}, SourceError, id="a 500"),
        pytest.param(
            {"urls": ["/budget/mof_budget20132014.csv"]}, SourceError, id="not a changes file"
        ),
        pytest.param(
            {"urls": [f"{BLOB}/{APPROV}?encoding=windows-1255"], "encoding": "utf-8"},
            SourceError,
            id="bytes that are not the configured encoding",
        ),
    ],
)
async def test_a_failed_read_raises_instead_of_looking_empty(
    base_url: str, http: httpx.AsyncClient, settings: dict[str, object], error: type[Exception]
) -> None:
    absolute = {
        name: [f"{base_url}{u}" for u in value] if isinstance(value, list) else f"{base_url}{value}"
        for name, value in settings.items()
        if name != "encoding"
    }
    with pytest.raises(error):
        await poll(http, **absolute, **{k: v for k, v in settings.items() if k == "encoding"})


def test_an_unknown_encoding_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="unknown encoding"):
        MofChangesWatcher.model_validate({"kind": "mof_changes", "encoding": "hebrew-ish"})


def test_the_defaults_point_at_the_real_gov_il_page() -> None:
    watcher = MofChangesWatcher.model_validate({"kind": "mof_changes"})
    assert watcher.discovery_url == "https://www.gov.il/he/pages/budget-changes-current-year"
    assert watcher.urls == ()
