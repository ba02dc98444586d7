"""GovilWatcher against a gov.il collector serving results built from real rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from agent.errors import SourceError
from agent.models import Item, Kind
from tests.conftest import serve
from tests.fakes.govil import (
    CLIENT_CONFIG,
    MOVED,
    build_app,
    criteria_results,
    office_id,
    tender_results,
)
from tests.fakes.jsonapi import FAILURES
from watchers.base import Batch
from watchers.govil import GovilWatcher


async def poll(http: httpx.AsyncClient, base_url: str, **settings: Any) -> Batch:
    """Poll with a freshly configured watcher pointed at ``base_url``."""
    config = {"kind": "govil", "base_url": base_url, "site_url": base_url, **settings}
    return await GovilWatcher.model_validate(config).poll(http, None)


def by_title(batch: Batch) -> dict[str, Item]:
    """Index a batch's items by title."""
    return {item.title: item for item in batch.items}


async def test_every_support_criterion_becomes_an_item(http: httpx.AsyncClient) -> None:
    with serve(build_app()) as url:
        batch = await poll(http, url, item_kind="support_criteria")
    assert len(batch.items) == len(criteria_results()) == 357
    assert batch.complete
    assert {item.kind for item in batch.items} == {Kind.SUPPORT_CRITERIA}
    first = batch.items[0]
    assert first.title.startswith("מבחנים לחלוקת כספי תמיכות של משרד הבריאות")
    assert first.publisher == "משרד הבריאות"
    assert first.published_at == datetime(2017, 8, 27, 21, 0, tzinfo=UTC)
    assert first.key == criteria_results()[0]["urlName"]
    assert first.url == f"{url}/he/departments/publications/Call_for_bids/{first.key}"
    assert first.tags == (first.description,)  # the target audience label


async def test_a_promoted_deadline_with_an_hour_is_read_in_israel_time(
    http: httpx.AsyncClient,
) -> None:
    with serve(build_app(tender_results())) as url:
        batch = await poll(http, url)
    item = by_title(batch)[next(t for t in by_title(batch) if "תחנות כוח סולאריות" in t)]
    assert item.kind is Kind.CALL_FOR_BIDS
    assert item.deadline == datetime(2017, 7, 25, 10, 0, tzinfo=UTC)
    assert item.status == "עודכן"
    assert item.description == ""
    other = by_title(batch)["מתן שירותי כוח אדם זמני בעיתות חירום"]
    assert other.deadline == datetime(2017, 7, 9, 21, 0, tzinfo=UTC)


async def test_pages_are_read_with_skip_and_limit(http: httpx.AsyncClient) -> None:
    app = build_app()
    with serve(app) as url:
        batch = await poll(http, url, page_size=100)
    assert len(batch.items) == 357
    assert [c["skip"] for c in app.state.calls] == ["0", "100", "200", "300"]
    assert {(c["limit"], c["culture"]) for c in app.state.calls} == {("100", "he")}
    assert {tuple(c["types"]) for c in app.state.calls} == {("rfp",)}


async def test_paging_stops_at_the_total(http: httpx.AsyncClient) -> None:
    app = build_app(tender_results())
    with serve(app) as url:
        batch = await poll(http, url, page_size=11)
    assert len(batch.items) == 11
    assert [c["skip"] for c in app.state.calls] == ["0"]


async def test_a_silently_capped_limit_still_reads_every_result(http: httpx.AsyncClient) -> None:
    app = build_app(tender_results(), limit_cap=4)
    with serve(app) as url:
        batch = await poll(http, url, page_size=50)
    assert len(batch.items) == 11
    assert batch.complete
    assert [c["skip"] for c in app.state.calls] == ["0", "4", "8"]


async def test_a_bare_list_without_a_total_ends_on_a_short_page(http: httpx.AsyncClient) -> None:
    app = build_app(answer=tender_results()[:3])
    with serve(app) as url:
        batch = await poll(http, url)
    assert batch.items[0].title == "מתן שירותי כוח אדם זמני בעיתות חירום"
    assert len(batch.items) == 3
    assert batch.complete
    assert len(app.state.calls) == 1


async def test_the_page_cap_gives_an_incomplete_batch(http: httpx.AsyncClient) -> None:
    with serve(build_app()) as url:
        batch = await poll(http, url, page_size=50, max_pages=2)
    assert len(batch.items) == 100
    assert not batch.complete


async def test_an_office_and_several_collector_types_are_asked_for(
    http: httpx.AsyncClient,
) -> None:
    app = build_app()
    health = office_id("משרד הבריאות")
    settings = {"office_id": health, "collector_type": ["rfp", "reports"], "params": {"Type": "x"}}
    with serve(app) as url:
        batch = await poll(http, url, **settings)
    assert batch.items
    assert {item.publisher for item in batch.items} == {"משרד הבריאות"}
    assert app.state.calls[0]["types"] == ["rfp", "reports"]
    assert (app.state.calls[0]["officeId"], app.state.calls[0]["Type"]) == (health, "x")


async def test_net_style_capitalised_answers_are_read_alike(http: httpx.AsyncClient) -> None:
    with serve(build_app(tender_results())) as url:
        plain = await poll(http, url)
    with serve(build_app(tender_results(), pascal=True)) as url:
        pascal = await poll(http, url)
    assert [i.model_dump(exclude={"raw", "url"}) for i in pascal.items] == [
        i.model_dump(exclude={"raw", "url"}) for i in plain.items
    ]
    assert "UrlName" in pascal.items[0].raw


async def test_the_client_id_is_read_from_the_config_script(http: httpx.AsyncClient) -> None:
    app = build_app(tender_results(), client_id="6f1d0c2e-public-id")
    with serve(app) as url:
        batch = await poll(
            http, url, collector_path=MOVED, client_config_url=f"{url}{CLIENT_CONFIG}"
        )
    assert len(batch.items) == 11


async def test_without_the_client_id_the_moved_api_refuses(http: httpx.AsyncClient) -> None:
    app = build_app(client_id="6f1d0c2e-public-id")
    with serve(app) as url, pytest.raises(SourceError, match="HTTP 401"):
        await poll(http, url, collector_path=MOVED)


async def test_a_config_script_without_a_client_id_raises(http: httpx.AsyncClient) -> None:
    with serve(build_app()) as url, pytest.raises(SourceError, match="no client id"):
        await poll(http, url, client_config_url=f"{url}{MOVED}")


async def test_arabic_and_english_results_are_read_as_written(http: httpx.AsyncClient) -> None:
    results: list[dict[str, Any]] = [
        {"id": 7, "Title": "دعوة لتقديم اقتراحات لدعم الثقافة العربية",
         "Tags": {"MetaData": {"משרד": [{"Title": "وزارة الثقافة"}]},
                  "PromotedMetaData": {"תאריך אחרון להגשה": ["2017-09-01T12:00:00"]}}},
        {"url": "/en/departments/publications/Call_for_bids/sports",
         "title": "Call for sports clubs",
         "offices": [{"name": "Ministry of Culture"}, {"name": "Sport Administration"}]},
        {"title": "תוצאה בלי מזהה"},
    ]  # fmt: skip
    with serve(build_app(results)) as url:
        batch = await poll(http, url)
    arabic, english = batch.items  # the third has no key and is skipped
    assert (arabic.key, arabic.publisher) == ("7", "وزارة الثقافة")
    assert arabic.title == "دعوة لتقديم اقتراحات لدعم الثقافة العربية"
    assert arabic.deadline == datetime(2017, 9, 1, 9, 0, tzinfo=UTC)
    assert arabic.url is None
    assert english.key == "/en/departments/publications/Call_for_bids/sports"
    assert english.publisher == "Ministry of Culture; Sport Administration"
    assert english.url == f"{url}/en/departments/publications/Call_for_bids/sports"


@pytest.mark.parametrize(
    ("mode", "error"),
    FAILURES,
)
@pytest.mark.parametrize("fail_at", [0, 50], ids=["on the first page", "on a later page"])
async def test_a_failing_collector_raises_instead_of_returning_results(
    http: httpx.AsyncClient, mode: Any, error: type[SourceError], fail_at: int
) -> None:
    with serve(build_app(fail=mode, fail_at_skip=fail_at)) as url, pytest.raises(error):
        await poll(http, url)


async def test_an_answer_without_a_results_list_raises(http: httpx.AsyncClient) -> None:
    answer = {"total": 3, "message": "השירות אינו זמין"}
    with serve(build_app(answer=answer)) as url, pytest.raises(SourceError, match="no results"):
        await poll(http, url)


def test_the_defaults_are_the_live_collector_for_calls_for_bids() -> None:
    watcher = GovilWatcher.model_validate({"kind": "govil"})
    assert watcher.base_url == "https://www.gov.il"
    assert watcher.collector_path == "/CollectorsWebApi/api/DataCollector/GetResults"
    assert (watcher.collector_type, watcher.culture, watcher.page_size) == ("rfp", "he", 50)
    assert watcher.item_kind is Kind.CALL_FOR_BIDS


def test_a_misspelt_setting_is_refused() -> None:
    with pytest.raises(ValidationError, match="officeid"):
        GovilWatcher.model_validate({"kind": "govil", "officeid": "x"})
