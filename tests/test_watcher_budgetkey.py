"""BudgetKeyWatcher against a Budget Key search server built from real recorded data."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from agent.config import load_config
from agent.errors import SourceError
from agent.models import Item, Kind
from tests.conftest import ROOT, serve
from tests.fakes.budgetkey import (
    INDEXED_AT,
    all_docs,
    build_app,
    change_docs,
    criteria_doc,
    criteria_rows,
    indexed,
)
from tests.fakes.jsonapi import FAILURES
from watchers.base import Batch
from watchers.budgetkey import BudgetKeyWatcher


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """Run the search server with every doc type, for the module."""
    with serve(build_app()) as url:
        yield url


def watcher(base_url: str, doc_type: str, **settings: Any) -> BudgetKeyWatcher:
    """A watcher of ``doc_type`` pointed at ``base_url``."""
    config = {"kind": "budgetkey", "base_url": base_url, "doc_type": doc_type, **settings}
    return BudgetKeyWatcher.model_validate(config)


async def poll(
    http: httpx.AsyncClient, base_url: str, doc_type: str, cursor: str | None = None, **kw: Any
) -> Batch:
    """Poll once with a freshly configured watcher."""
    return await watcher(base_url, doc_type, **kw).poll(http, cursor)


def by_key(batch: Batch) -> dict[str, Item]:
    """Index a batch's items by key."""
    return {item.key: item for item in batch.items}


def stamp(minutes: int) -> str:
    """An indexing time ``minutes`` after the fake's, as ``dump_to_es`` writes it."""
    at = datetime.fromisoformat(INDEXED_AT.removesuffix("Z")) + timedelta(minutes=minutes)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_tenders_and_exemptions_come_with_their_doc_ids(
    base_url: str, http: httpx.AsyncClient
) -> None:
    batch = await poll(http, base_url, "tenders")
    assert len(batch.items) == 21
    assert batch.complete
    assert batch.cursor == INDEXED_AT
    items = by_key(batch)
    assert items["tenders/office/598885/3/17"].kind is Kind.TENDER
    assert items["tenders/exemptions/600009/none"].kind is Kind.EXEMPTION


async def test_a_tender_number_with_a_slash_stays_whole(
    base_url: str, http: httpx.AsyncClient
) -> None:
    item = by_key(await poll(http, base_url, "tenders"))["tenders/office/596915/04/2017"]
    assert item.title.startswith("מכרז למתן שירותי ליווי וייעוץ הנדסי")
    assert (item.publisher, item.publishing_unit) == ("משרד האוצר", "החשב הכללי")
    # Budget Key's claim_date 2017-07-25T13:00:00Z is naive Israel summer time (UTC+3).
    assert item.raw["claim_date"] == "2017-07-25T13:00:00Z"
    assert item.deadline == datetime(2017, 7, 25, 10, 0, tzinfo=UTC)
    assert item.published_at == datetime(2017, 4, 25, 21, 0, tzinfo=UTC)
    assert item.status == "עודכן"
    assert item.url == f"{base_url}/i/tenders/office/596915/04/2017"
    assert "שירותי מיחשוב" in item.tags
    assert item.description == ""  # the same text as the title is not repeated


async def test_a_tender_title_is_its_description_not_the_snippet(
    base_url: str, http: httpx.AsyncClient
) -> None:
    item = by_key(await poll(http, base_url, "tenders"))["tenders/exemptions/600083/none"]
    assert item.raw["page_title"] == f"{item.publisher}: רכש פטור ממכרז - {item.title}"
    assert item.title == item.raw["description"]


@pytest.mark.parametrize(
    ("claim_date", "utc"),
    [
        pytest.param("2017-01-15T12:00:00Z", datetime(2017, 1, 15, 10, tzinfo=UTC), id="winter"),
        pytest.param("2017-07-15T12:00:00Z", datetime(2017, 7, 15, 9, tzinfo=UTC), id="summer"),
        pytest.param("2017-03-24T12:00:00Z", datetime(2017, 3, 24, 9, tzinfo=UTC), id="dst day"),
    ],
)
async def test_a_deadline_with_z_is_israel_time(
    http: httpx.AsyncClient, claim_date: str, utc: datetime
) -> None:
    doc = all_docs()["tenders"][0]
    doc["claim_date"] = claim_date
    with serve(build_app({"tenders": [doc]})) as url:
        [item] = (await poll(http, url, "tenders")).items
    assert item.deadline == utc


async def test_an_exemption_has_its_amount_in_its_currency(
    base_url: str, http: httpx.AsyncClient
) -> None:
    items = by_key(await poll(http, base_url, "tenders"))
    item = items["tenders/exemptions/600083/none"]
    assert item.raw["source_currency"] == 'ש"ח'
    assert (item.amount, item.currency) == (38_536_522.0, "ILS")
    assert item.status == "נרשם"
    assert item.tags == ("שירותי חינוך והכשרה", "כיתות הדרכה", "שרותי חינוך מיוחדים")
    unknown = items["tenders/exemptions/600107/none"]
    assert (unknown.amount, unknown.currency) == (None, None)  # "0" means not known


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"volume": 250_000.0, "source_currency": "USD"}, (250_000.0, "USD"), id="usd"),
        pytest.param({"volume": 9_000.0, "source_currency": "אירו"}, (9_000.0, "EUR"), id="euro"),
        pytest.param({"volume": 9_000.0, "source_currency": None}, (9_000.0, "ILS"), id="absent"),
        pytest.param(
            {"volume": None, "contract_volume": 120_000, "source_currency": "USD"},
            (120_000.0, "ILS"),
            id="paid under the contracts, in shekels",
        ),
    ],
)
async def test_the_volume_is_in_the_source_currency(
    http: httpx.AsyncClient, fields: dict[str, Any], expected: tuple[float, str]
) -> None:
    doc = {**all_docs()["tenders"][-1], **fields}
    with serve(build_app({"tenders": [doc]})) as url:
        [item] = (await poll(http, url, "tenders")).items
    assert (item.amount, item.currency) == expected


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
    assert {item.key.split("/")[:2][1] for item in batch.items} == {"call_for_bids"}


async def test_a_call_takes_its_tags_from_subject_list_keywords(http: httpx.AsyncClient) -> None:
    doc = all_docs()["calls_for_bids"][0]
    doc["subject_list_keywords"] = ["מלגות", "השכלה גבוהה", "מלגות"]
    doc["claim_date"] = "2017-12-31T23:59:00Z"
    with serve(build_app({"calls_for_bids": [doc]})) as url:
        [item] = (await poll(http, url, "calls_for_bids")).items
    assert item.tags == ("מלגות", "השכלה גבוהה")
    assert item.title == doc["page_title"]  # a call's page_title is its own title
    assert item.deadline == datetime(2017, 12, 31, 21, 59, tzinfo=UTC)


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
    assert [c["budget_code_title"] for c in item.raw["change_list"]] == [
        "00015101:נשיא המדינה",
        "00015102:נשיאי המדינה לשעבר",
    ]
    assert item.raw["summary"]["to"] == [["0001", 7_128_000.0, "נשיא המדינה ולשכתו"]]
    assert item.kind is Kind.BUDGET_CHANGE
    assert item.title == "קליטת 80% מהעודפים"
    assert (item.amount, item.currency) == (7_128_000.0, "ILS")
    assert item.budget_codes == ("00015101", "00015102")  # section 0001 is covered by them
    assert item.status == "approved"
    assert item.published_at == datetime(2014, 3, 18, 22, 0, tzinfo=UTC)
    assert item.description == (
        "00015101 נשיא המדינה: +6,830,000 ₪\n00015102 נשיאי המדינה לשעבר: +298,000 ₪"
    )
    assert item.tags == ("הודעה לועדה", "עודפים")


async def test_a_change_with_only_a_summary_gives_its_sections(http: httpx.AsyncClient) -> None:
    [doc] = [d for d in change_docs() if d["transaction_id"] == "2014/01-004"]
    del doc["change_list"], doc["budget_code_title"], doc["net_expense_diff"]
    with serve(build_app({"national-budget-changes": [doc]})) as url:
        [item] = (await poll(http, url, "national-budget-changes")).items
    assert item.budget_codes == ("0001",)
    assert item.description == "0001 נשיא המדינה ולשכתו: +7,128,000 ₪"
    assert item.amount == 7_128_000.0  # the transaction's amount: the sum of its diffs


async def test_a_pending_transaction_says_so(http: httpx.AsyncClient) -> None:
    docs = {"national-budget-changes": change_docs(pending=frozenset({"2014/01-001"}))}
    with serve(build_app(docs)) as url:
        items = by_key(await poll(http, url, "national-budget-changes"))
    item = items["national-budget-changes/2014/01-001"]
    assert (item.status, item.amount) == ("pending", -95_000.0)
    assert item.description == "00015201 רזרבה: -95,000 ₪"
    assert item.budget_codes == ("00015201",)


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


async def test_query_and_filters_are_sent_and_the_order_is_by_modification(
    http: httpx.AsyncClient,
) -> None:
    app = build_app()
    settings: dict[str, Any] = {"query": "משרד", "filters": {"tender_type": "exemptions"}}
    with serve(app) as url:
        batch = await poll(http, url, "tenders", **settings)
    assert {item.kind for item in batch.items} == {Kind.EXEMPTION}
    assert len(batch.items) == 10
    [call] = app.state.calls
    assert json.loads(call["filter"]) == {"tender_type": "exemptions"}
    assert (call["q"], call["order"]) == ("משרד", "-__last_modified_at")


async def test_the_shipped_tenders_filter_keeps_open_tenders(http: httpx.AsyncClient) -> None:
    shipped = load_config(ROOT / "config.toml").sources["budgetkey-tenders"]
    assert isinstance(shipped, BudgetKeyWatcher)
    assert shipped.filters == {"claim_date__gte": "now"}
    now = datetime(2017, 7, 16, tzinfo=UTC)
    with serve(build_app(now=now)) as url:
        batch = await shipped.model_copy(update={"base_url": url}).poll(http, None)
    assert batch.complete
    assert sorted(item.key for item in batch.items) == [
        "tenders/office/596915/04/2017",  # 25.07.2017 13:00
        "tenders/office/598919/1/17 ה",  # 16.07.2017: Elasticsearch reads 00:00Z as UTC
        "tenders/office/598945/303/2017",  # 17.07.2017
        "tenders/office/599991/9/17",
        "tenders/office/599994/8/17",
        "tenders/office/599996/1/17",
        "tenders/office/599998/4/17",
    ]  # not the 10 exemptions (no claim_date) nor the 4 tenders closed before the 16th


async def test_the_shipped_budget_changes_filter_keeps_the_last_year(
    http: httpx.AsyncClient,
) -> None:
    shipped = load_config(ROOT / "config.toml").sources["budgetkey-budget-changes"]
    assert isinstance(shipped, BudgetKeyWatcher)
    now = datetime(2015, 4, 1, 12, tzinfo=UTC)
    recent = {d["doc_id"] for d in change_docs() if any(day >= "2014-04-01" for day in d["date"])}
    with serve(build_app(now=now)) as url:
        batch = await shipped.model_copy(update={"base_url": url}).poll(http, None)
    assert 0 < len(recent) < 129
    assert {item.key for item in batch.items} == recent


@pytest.mark.parametrize(
    ("filters", "keys"),
    [
        pytest.param({"publication_id": 600083}, ["600083"], id="a term"),
        pytest.param({"publication_id": [600083, 600009]}, ["600009", "600083"], id="any of"),
        pytest.param(
            {"tender_type__not": "office", "volume__gt": 1_000_000},
            ["599661", "600083"],
            id="not and gt",
        ),
        pytest.param(
            {"volume__gte": 26_910, "volume__lt#2": 500_000}, ["600102"], id="two on one field"
        ),
        pytest.param(
            [{"publication_id": 600009}, {"claim_date__gte": "2017-08-04"}],
            ["599996", "599998", "600009"],
            id="a list is any of its objects",
        ),
        pytest.param({"claim_date__lt": "now-1w/d"}, ["597866", "598898"], id="date maths"),
        pytest.param(
            {"subject_list_keywords__all": ["כיתות הדרכה", "שרותי חינוך מיוחדים"]},
            ["600061", "600083"],
            id="all",
        ),
        pytest.param({"description__like": "חשמל צנתורים"}, ["599991", "599994"], id="like"),
        pytest.param(
            {"tender_type": "exemptions", "publisher_unit__empty": True},
            ["599904", "600009", "600061", "600083", "600108"],
            id="empty",
        ),
        pytest.param(
            {"tender_type": "office", "last_update_date__exists": True}, ["596915"], id="exists"
        ),
        pytest.param(
            [{"_type": "calls_for_bids", "publication_id": 1}, {"publication_id": 600083}],
            ["600083"],
            id="_type limits an object",
        ),
    ],
)
async def test_filters_select_as_budget_key_does(
    http: httpx.AsyncClient, filters: Any, keys: list[str]
) -> None:
    with serve(build_app(now=datetime(2017, 7, 14, 12, tzinfo=UTC))) as url:
        batch = await poll(http, url, "tenders", filters=filters)
    assert sorted(str(item.raw["publication_id"]) for item in batch.items) == keys


def test_an_eq_filter_is_refused_because_budget_key_would_answer_nothing() -> None:
    with pytest.raises(ValidationError, match="__eq"):
        watcher("http://x", "tenders", filters={"volume__eq": 5})


async def test_a_later_page_is_read_from_the_cursor_onwards(http: httpx.AsyncClient) -> None:
    docs = all_docs()["tenders"]
    for minutes, doc in enumerate(docs):
        indexed(doc, stamp(minutes))
    app = build_app({"tenders": docs})
    with serve(app) as url:
        batch = await poll(http, url, "tenders", cursor=stamp(15), page_size=50)
    assert sorted(item.raw["__last_modified_at"] for item in batch.items) == [
        stamp(m) for m in range(15, 21)
    ]  # the documents indexed at the cursor itself are read again
    assert not batch.complete
    assert batch.cursor == stamp(20)
    assert len(app.state.calls) == 1


async def test_nothing_changed_is_an_incomplete_empty_batch(
    base_url: str, http: httpx.AsyncClient
) -> None:
    batch = await poll(http, base_url, "tenders", cursor=stamp(1))
    assert (batch.items, batch.complete, batch.cursor) == ([], False, stamp(1))


async def test_a_reindexed_listing_is_read_whole_again(
    base_url: str, http: httpx.AsyncClient
) -> None:
    batch = await poll(http, base_url, "tenders", cursor=INDEXED_AT)
    assert len(batch.items) == 21
    assert batch.complete  # everything is as new as the cursor: the whole listing was read


async def test_a_large_listing_is_read_without_crossing_the_window(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    rows = criteria_rows()
    docs = [
        indexed(
            {**criteria_doc(rows[i % len(rows)]), "doc_id": f"support_criteria/x/{i}/none"},
            stamp(i // 100),  # 105 indexing runs of 100 documents
        )
        for i in range(10_500)
    ]
    app = build_app({"support_criteria": docs})
    with serve(app) as url, caplog.at_level(logging.WARNING):
        first = await poll(http, url, "support_criteria", page_size=1000)
        assert len(first.items) == 10_000
        assert not first.complete
        assert first.cursor == stamp(104)
        assert max(int(c["offset"]) + int(c["size"]) for c in app.state.calls) == 10_000
        assert "read 10000 of 10500 documents" in caplog.text
        for doc in docs[:5]:  # five of the oldest change
            indexed(doc, stamp(200))
        app.state.calls.clear()
        second = await poll(http, url, "support_criteria", cursor=first.cursor, page_size=1000)
    assert len(second.items) == 105  # the five, and the run the cursor points at
    assert {item.key for item in second.items} >= {d["doc_id"] for d in docs[:5]}
    assert (second.complete, second.cursor) == (False, stamp(200))
    assert [c["offset"] for c in app.state.calls] == ["0"]


async def test_the_fake_answers_nothing_past_the_window(http: httpx.AsyncClient) -> None:
    docs = [indexed({"doc_id": f"support_criteria/x/{i}/none"}) for i in range(10_010)]
    with serve(build_app({"support_criteria": docs})) as url:
        inside = (await http.get(f"{url}/search/support_criteria?offset=9990&size=10")).json()
        past = (await http.get(f"{url}/search/support_criteria?offset=9990&size=11")).json()
    assert (len(inside["search_results"]), inside["search_counts"]["_current"]) == (
        10,
        {"total_overall": 10_010},
    )
    assert (past["search_results"], past["search_counts"]["_current"]) == (
        [],
        {"total_overall": 0},
    )


async def test_a_later_page_that_counts_nothing_raises(http: httpx.AsyncClient) -> None:
    with serve(build_app(refuse_from_offset=10)) as url, pytest.raises(SourceError, match="0"):
        await poll(http, url, "tenders", page_size=5)


async def test_documents_without_a_modification_time_cannot_be_polled_by_cursor(
    http: httpx.AsyncClient,
) -> None:
    docs = all_docs()["tenders"]
    for doc in docs:
        del doc["__last_modified_at"]
    with serve(build_app({"tenders": docs})) as url:
        assert len((await poll(http, url, "tenders")).items) == 21
        with pytest.raises(SourceError, match="__last_modified_at"):
            await poll(http, url, "tenders", cursor=INDEXED_AT)


async def test_a_document_of_another_shape_is_skipped(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    docs = all_docs()["tenders"]
    docs[0]["volume"] = {"amount": 5}
    docs[1]["subject_list_keywords"] = {"not": "a list"}
    docs[2]["doc_id"] = None  # the key is then built from the parts of a doc_id
    with serve(build_app({"tenders": docs})) as url, caplog.at_level(logging.WARNING):
        batch = await poll(http, url, "tenders")
    items = by_key(batch)
    assert len(items) == 19
    assert docs[0]["doc_id"] not in items
    assert docs[1]["doc_id"] not in items
    assert f"tenders/office/{docs[2]['publication_id']}/{docs[2]['tender_id']}" in items
    assert not batch.complete  # a skipped document is not gone upstream
    assert "a document is skipped (AttributeError" in caplog.text
    assert "a document is skipped (TypeError" in caplog.text


async def test_only_bad_documents_raise(http: httpx.AsyncClient) -> None:
    docs = [{**doc, "volume": [1]} for doc in all_docs()["tenders"]]
    with serve(build_app({"tenders": docs})) as url, pytest.raises(SourceError, match="none of"):
        await poll(http, url, "tenders")


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


async def test_an_error_answer_is_reported_with_its_message(http: httpx.AsyncClient) -> None:
    message = "ConnectionError(<urllib3.connection.HTTPConnection>: Failed to establish)"
    refused = pytest.raises(SourceError, match=r"answered an error: ConnectionError\(")
    with serve(build_app(answer={"error": message})) as url, refused as caught:
        await poll(http, url, "tenders")
    assert message in str(caught.value)


async def test_the_fake_reports_an_unknown_type_as_apies_does(http: httpx.AsyncClient) -> None:
    refused = pytest.raises(SourceError, match="not a real type calls_for_bids")
    with serve(build_app({"tenders": []})) as url, refused:
        await poll(http, url, "calls_for_bids")


async def test_json_without_search_results_raises(http: httpx.AsyncClient) -> None:
    answer = {"search_counts": {"_current": {"total_overall": 3}}}
    with serve(build_app(answer=answer)) as url, pytest.raises(SourceError, match="no search_"):
        await poll(http, url, "tenders")


def test_an_unknown_doc_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="doc_type"):
        BudgetKeyWatcher.model_validate({"kind": "budgetkey", "doc_type": "contracts"})


def test_the_default_endpoint_is_the_live_budget_key() -> None:
    watcher = BudgetKeyWatcher.model_validate({"kind": "budgetkey", "doc_type": "tenders"})
    assert (watcher.base_url, watcher.page_size) == ("https://next.obudget.org", 100)
    assert len(all_docs()["tenders"]) == 21
