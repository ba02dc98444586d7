"""BudgetKeyWatcher against a Budget Key search server built from real recorded data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from agent.errors import SourceError
from agent.models import Item, Kind
from tests.conftest import serve
from tests.fakes.budgetkey import all_docs, build_app, change_docs, criteria_doc, criteria_rows
from tests.fakes.jsonapi import FAILURES
from watchers.base import Batch
from watchers.budgetkey import BudgetKeyWatcher


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """Run the search server with every doc type, for the module."""
    with serve(build_app()) as url:
        yield url


async def poll(http: httpx.AsyncClient, base_url: str, doc_type: str, **settings: Any) -> Batch:
    """Poll with a freshly configured watcher pointed at ``base_url``."""
    config = {"kind": "budgetkey", "base_url": base_url, "doc_type": doc_type, **settings}
    return await BudgetKeyWatcher.model_validate(config).poll(http, None)


def by_key(batch: Batch) -> dict[str, Item]:
    """Index a batch's items by key."""
    return {item.key: item for item in batch.items}


async def test_tenders_and_exemptions_come_with_their_doc_ids(
    base_url: str, http: httpx.AsyncClient
) -> None:
    batch = await poll(http, base_url, "tenders")
    assert len(batch.items) == 21
    assert batch.complete
    items = by_key(batch)
    assert items["tenders/office/598885/3/17"].kind is Kind.TENDER
    assert items["tenders/exemptions/600009/none"].kind is Kind.EXEMPTION


async def test_a_tender_number_with_a_slash_stays_whole(
    base_url: str, http: httpx.AsyncClient
) -> None:
    item = by_key(await poll(http, base_url, "tenders"))["tenders/office/596915/04/2017"]
    assert item.title.startswith("מכרז למתן שירותי ליווי וייעוץ הנדסי")
    assert (item.publisher, item.publishing_unit) == ("משרד האוצר", "החשב הכללי")
    # Budget Key's naive claim_date 2017-07-25T13:00 is Israel summer time (UTC+3).
    assert item.deadline == datetime(2017, 7, 25, 10, 0, tzinfo=UTC)
    assert item.published_at == datetime(2017, 4, 25, 21, 0, tzinfo=UTC)
    assert item.status == "עודכן"
    assert item.url == f"{base_url}/i/tenders/office/596915/04/2017"
    assert "שירותי מיחשוב" in item.tags
    assert item.description == ""  # the same text as the title is not repeated


async def test_an_exemption_has_its_amount_and_decision(
    base_url: str, http: httpx.AsyncClient
) -> None:
    items = by_key(await poll(http, base_url, "tenders"))
    item = items["tenders/exemptions/600083/none"]
    assert (item.amount, item.currency) == (38_536_522.0, "ILS")
    assert item.status == "נרשם"
    assert item.tags == ("שירותי חינוך והכשרה", "כיתות הדרכה", "שרותי חינוך מיוחדים")
    assert items["tenders/exemptions/600107/none"].amount is None  # "0" means not known


async def test_support_criteria_come_from_the_justice_ministry_list(
    base_url: str, http: httpx.AsyncClient
) -> None:
    batch = await poll(http, base_url, "support_criteria", page_size=100)
    # 359 rows, but two have neither title, office nor date: one synthetic id, one item.
    assert len(batch.items) == 358
    assert batch.complete
    first = batch.items[0]
    assert first.kind is Kind.SUPPORT_CRITERIA
    assert first.key.startswith("support_criteria/support_criteria/")
    assert first.key.endswith("/none")
    assert first.title.startswith("מבחנים לחלוקת כספי תמיכות של משרד הבריאות")
    assert first.publisher == "משרד הבריאות"
    assert first.published_at == datetime(2017, 8, 27, 21, 0, tzinfo=UTC)
    assert first.deadline is None


async def test_a_multi_line_publisher_is_one_line(base_url: str, http: httpx.AsyncClient) -> None:
    batch = await poll(http, base_url, "support_criteria", query="בקונסרבטוריונים")
    [item] = batch.items
    assert item.publisher == "משרד החינוך; משרד החינוך - מינהל פדגוגי"


async def test_calls_for_bids_are_calls(base_url: str, http: httpx.AsyncClient) -> None:
    batch = await poll(http, base_url, "calls_for_bids")
    assert len(batch.items) == 16
    assert {item.kind for item in batch.items} == {Kind.CALL_FOR_BIDS}
    assert all(item.key.startswith("calls_for_bids/call_for_bids/") for item in batch.items)


async def test_budget_codes_are_normalised_to_budget_key_digits(http: httpx.AsyncClient) -> None:
    doc = criteria_doc(criteria_rows()[0])
    doc["budget_codes"] = ["20.40.01"]
    doc["resolved_budget_codes"] = [{"code": "0020400102", "year": 2017, "title": "תמיכות"}]
    with serve(build_app({"support_criteria": [doc]})) as url:
        [item] = (await poll(http, url, "support_criteria")).items
    assert item.budget_codes == ("00204001", "0020400102")


async def test_a_budget_change_is_a_transaction_in_shekels(
    base_url: str, http: httpx.AsyncClient
) -> None:
    batch = await poll(http, base_url, "national-budget-changes")
    assert len(batch.items) == 129
    item = by_key(batch)["national-budget-changes/2014/01-004"]
    assert item.kind is Kind.BUDGET_CHANGE
    assert item.title == "קליטת 80% מהעודפים"
    assert (item.amount, item.currency) == (7_128_000.0, "ILS")
    assert item.budget_codes == ("00015101", "00015102")
    assert item.status == "approved"
    assert item.published_at == datetime(2014, 3, 18, 22, 0, tzinfo=UTC)
    assert item.description == (
        "00015101 נשיא המדינה: +6,830,000 ₪\n00015102 נשיאי המדינה לשעבר: +298,000 ₪"
    )
    assert item.tags == ("הודעה לועדה", "עודפים")


async def test_a_pending_transaction_says_so(http: httpx.AsyncClient) -> None:
    docs = {"national-budget-changes": change_docs(pending=frozenset({"2014/01-001"}))}
    with serve(build_app(docs)) as url:
        items = by_key(await poll(http, url, "national-budget-changes"))
    item = items["national-budget-changes/2014/01-001"]
    assert (item.status, item.amount) == ("pending", -95_000.0)
    assert item.description == "00015201 רזרבה: -95,000 ₪"


async def test_pages_are_read_by_offset_until_the_total(http: httpx.AsyncClient) -> None:
    app = build_app()
    with serve(app) as url:
        batch = await poll(http, url, "tenders", page_size=5)
    assert len(batch.items) == 21
    assert batch.complete
    assert [c["offset"] for c in app.state.calls] == ["0", "5", "10", "15", "20"]
    assert {c["size"] for c in app.state.calls} == {"5"}


async def test_paging_stops_at_the_total_without_an_empty_page(http: httpx.AsyncClient) -> None:
    app = build_app()
    with serve(app) as url:
        batch = await poll(http, url, "national-budget-changes", page_size=43)
    assert len(batch.items) == 129
    assert [c["offset"] for c in app.state.calls] == ["0", "43", "86"]


async def test_a_silently_capped_size_still_reads_every_document(
    http: httpx.AsyncClient,
) -> None:
    app = build_app(ignore_size_above=7)
    with serve(app) as url:
        batch = await poll(http, url, "tenders", page_size=100)
    assert len(batch.items) == 21
    assert batch.complete
    assert [c["offset"] for c in app.state.calls] == ["0", "7", "14"]


async def test_the_page_cap_gives_an_incomplete_batch(http: httpx.AsyncClient) -> None:
    with serve(build_app()) as url:
        batch = await poll(http, url, "support_criteria", page_size=50, max_pages=3)
    assert len(batch.items) == 150
    assert not batch.complete


async def test_query_filters_and_order_are_sent(http: httpx.AsyncClient) -> None:
    app = build_app()
    settings = {"query": "משרד", "filters": {"tender_type": "exemptions"}, "order": "-score"}
    with serve(app) as url:
        batch = await poll(http, url, "tenders", **settings)
    assert {item.kind for item in batch.items} == {Kind.EXEMPTION}
    assert len(batch.items) == 10
    [call] = app.state.calls
    assert json.loads(call["filter"]) == {"tender_type": "exemptions"}
    assert (call["q"], call["order"]) == ("משרד", "-score")


async def test_arabic_and_english_documents_are_read_as_written(http: httpx.AsyncClient) -> None:
    rows = [
        {"date": "2017-05-01", "title": "معايير دعم المؤسسات الثقافية العربية", "paper_type": "",
         "office": "وزارة الثقافة والرياضة", "pdf_url": "", "expected_purpose": "مؤسسات ثقافية"},
        {"date": "", "title": "Support criteria for sports clubs", "paper_type": "",
         "office": "Ministry of Culture and Sport", "pdf_url": "", "expected_purpose": ""},
    ]  # fmt: skip
    with serve(build_app({"support_criteria": [criteria_doc(r) for r in rows]})) as url:
        arabic, english = (await poll(http, url, "support_criteria")).items
    assert (arabic.title, arabic.publisher) == (
        "معايير دعم المؤسسات الثقافية العربية",
        "وزارة الثقافة والرياضة",
    )
    assert arabic.description == "مؤسسات ثقافية"
    assert (english.title, english.published_at) == ("Support criteria for sports clubs", None)


async def test_an_empty_search_is_a_complete_empty_batch(http: httpx.AsyncClient) -> None:
    with serve(build_app({"tenders": []})) as url:
        batch = await poll(http, url, "tenders")
    assert (batch.items, batch.complete) == ([], True)


@pytest.mark.parametrize(
    ("mode", "error"),
    FAILURES,
)
@pytest.mark.parametrize("fail_at", [0, 10], ids=["on the first page", "on a later page"])
async def test_a_failing_search_raises_instead_of_returning_documents(
    http: httpx.AsyncClient, mode: Any, error: type[SourceError], fail_at: int
) -> None:
    with serve(build_app(fail=mode, fail_at_offset=fail_at)) as url, pytest.raises(error):
        await poll(http, url, "tenders", page_size=5)


async def test_json_without_search_results_raises(http: httpx.AsyncClient) -> None:
    answer = {"search_counts": {"_current": {"total_overall": 3}}, "error": "בקשה שגויה"}
    with serve(build_app(answer=answer)) as url, pytest.raises(SourceError, match="no search_"):
        await poll(http, url, "tenders")


def test_an_unknown_doc_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="doc_type"):
        BudgetKeyWatcher.model_validate({"kind": "budgetkey", "doc_type": "contracts"})


def test_the_default_endpoint_is_the_live_budget_key() -> None:
    watcher = BudgetKeyWatcher.model_validate({"kind": "budgetkey", "doc_type": "tenders"})
    assert (watcher.base_url, watcher.page_size) == ("https://next.obudget.org", 100)
    assert len(all_docs()["tenders"]) == 21
