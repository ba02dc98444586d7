"""GovilWatcher against gov.il's collectors gateway serving results built from real rows."""

from __future__ import annotations

import logging
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
    CLIENT_ID,
    GATEWAY,
    build_app,
    criteria_results,
    office_id,
    tender_results,
)
from tests.fakes.jsonapi import FAILURES
from watchers.base import Batch
from watchers.govil import (
    CALL_COLLECTORS,
    CALLS_STATUS,
    CALLS_TYPE,
    SUPPORTS_TYPE,
    GovilWatcher,
    read_run_config,
)


def settings(url: str, **more: Any) -> dict[str, Any]:
    """The live defaults, with gov.il's addresses replaced by the fake's."""
    return {
        "kind": "govil",
        "base_url": f"{url}{GATEWAY}",
        "client_config_url": f"{url}{CLIENT_CONFIG}",
        **more,
    }


async def poll(http: httpx.AsyncClient, url: str, **more: Any) -> Batch:
    """Poll with a freshly configured watcher pointed at the fake at ``url``."""
    return await GovilWatcher.model_validate(settings(url, **more)).poll(http, None)


def by_title(batch: Batch) -> dict[str, Item]:
    """Index a batch's items by title."""
    return {item.title: item for item in batch.items}


async def test_every_support_criterion_becomes_an_item(http: httpx.AsyncClient) -> None:
    with serve(build_app()) as url:
        batch = await poll(http, url, item_kind="support_criteria", type_id=SUPPORTS_TYPE)
    assert len(batch.items) == len(criteria_results()) == 357
    assert batch.complete
    assert {item.kind for item in batch.items} == {Kind.SUPPORT_CRITERIA}
    first = batch.items[0]
    assert first.title.startswith("מבחנים לחלוקת כספי תמיכות של משרד הבריאות")
    assert first.publisher == "משרד הבריאות"
    assert first.published_at == datetime(2017, 8, 27, 21, 0, tzinfo=UTC)
    assert first.key == criteria_results()[0]["url"]
    assert first.key.startswith("/he/departments/publications/Call_for_bids/")
    assert first.url == f"https://www.gov.il{first.key}"
    assert first.tags == (first.description,)  # the target audience label


async def test_a_call_has_its_promoted_deadline_in_israel_time(http: httpx.AsyncClient) -> None:
    with serve(build_app(tender_results())) as url:
        batch = await poll(http, url)
    solar = next(item for item in batch.items if "תחנות כוח סולאריות" in item.title)
    assert solar.kind is Kind.CALL_FOR_BIDS
    # 25.07.2017 is a summer day: midnight in Jerusalem is 21:00 UTC the day before.
    assert solar.deadline == datetime(2017, 7, 24, 21, 0, tzinfo=UTC)
    assert solar.published_at == datetime(2017, 4, 25, 21, 0, tzinfo=UTC)
    assert (solar.description, solar.status) == ("", None)
    assert solar.raw["tags"]["promotedMetaData"]["מספר"] == [{"title": "04/2017"}]
    other = by_title(batch)["מתן שירותי כוח אדם זמני בעיתות חירום"]
    assert other.deadline == datetime(2017, 7, 9, 21, 0, tzinfo=UTC)


async def test_the_query_is_budget_keys_for_calls_with_the_id_and_origin(
    http: httpx.AsyncClient,
) -> None:
    app = build_app()
    with serve(app) as url:
        batch = await poll(http, url, page_size=100)
    assert len(batch.items) == 357
    assert app.state.refusals == []
    assert [c["skip"] for c in app.state.calls] == ["0", "100", "200", "300"]
    first = app.state.calls[0]
    assert first["types"] == ["reports", "rfp", "drushim", "publicsharing"]
    assert (first["Type"], first["Status"]) == (CALLS_TYPE, CALLS_STATUS)
    assert (first["limit"], first["culture"]) == ("100", "he")
    assert "officeId" not in first
    assert first["headers"]["x-client-id"] == CLIENT_ID
    assert first["headers"]["origin"] == "https://www.gov.il"


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


async def test_the_page_cap_gives_an_incomplete_batch(http: httpx.AsyncClient) -> None:
    with serve(build_app()) as url:
        batch = await poll(http, url, page_size=50, max_pages=2)
    assert len(batch.items) == 100
    assert not batch.complete


async def test_an_office_and_other_collector_types_are_asked_for(
    http: httpx.AsyncClient,
) -> None:
    app = build_app()
    health = office_id("משרד הבריאות")
    more = {"office_id": health, "collector_type": ["rfp"], "status_id": None}
    with serve(app) as url:
        batch = await poll(http, url, **more, params={"From": "0"})
    publishers = [item.publisher for item in batch.items]
    assert len(publishers) == 40
    assert set(publishers) == {"משרד הבריאות"}
    call = app.state.calls[0]
    assert (call["types"], call["officeId"], call["From"]) == (["rfp"], health, "0")
    assert "Status" not in call


async def test_without_the_client_id_the_gateway_refuses(http: httpx.AsyncClient) -> None:
    app = build_app()
    with serve(app) as url, pytest.raises(SourceError, match="HTTP 500"):
        await poll(http, url, client_config_url=None)
    assert app.state.refusals == ["FailedToResolveAPIKey"]


async def test_without_the_origin_the_gateway_refuses(http: httpx.AsyncClient) -> None:
    app = build_app()
    with serve(app) as url, pytest.raises(SourceError, match="HTTP 500"):
        await poll(http, url, origin=None)
    assert app.state.refusals == ["RF-OriginError"]


async def test_the_old_address_answers_html_which_is_an_error_not_an_empty_list(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_app()
    with serve(app) as url, pytest.raises(SourceError) as raised:
        await poll(http, url, base_url=f"{url}/CollectorsWebApi")
    message = str(raised.value)
    assert "an HTML page instead of the collector's JSON" in message
    # The config script names the gateway that moved: the error says where.
    assert f"client-config.js names the API {url}{GATEWAY}: set base_url" in message
    assert f"names the API {url}{GATEWAY}, not {url}/CollectorsWebApi" in caplog.text


def test_the_run_config_is_read_as_json_or_as_a_javascript_literal() -> None:
    script = (
        'window[\'govilRunConfig\'] = {"culture":"he","dataCollectorWebApi":'
        '"https://openapi-gc.digital.gov.il/pub/cio/govil/rest/collectors/v1/",'
        f'"clientId":"{CLIENT_ID}"}};'
    )
    config = read_run_config("client-config.js", script)
    assert config.client_id == CLIENT_ID
    assert config.api == "https://openapi-gc.digital.gov.il/pub/cio/govil/rest/collectors/v1"
    literal = "window[\"govilRunConfig\"] = { clientId: 'abc', other: 1 };"
    assert read_run_config("client-config.js", literal) == ("abc", None)


@pytest.mark.parametrize(
    ("script", "error"),
    [
        pytest.param('window.__env = {"clientId": "x"};', "no govilRunConfig", id="another script"),
        pytest.param(
            'window[\'govilRunConfig\'] = {"culture": "he"};', "has no clientId", id="no id"
        ),
        pytest.param(
            'window[\'govilRunConfig\'] = {"clientId": "  "};', "has no clientId", id="blank id"
        ),
    ],
)
async def test_a_config_script_without_a_client_id_raises(
    http: httpx.AsyncClient, script: str, error: str
) -> None:
    app = build_app(script=script)
    with serve(app) as url, pytest.raises(SourceError, match=error):
        await poll(http, url)
    assert app.state.calls == []


async def test_results_are_read_in_arabic_and_english_as_written(
    http: httpx.AsyncClient,
) -> None:
    results: list[dict[str, Any]] = [
        {"url": "/ar/departments/publications/Call_for_bids/culture",
         "title": "دعوة لتقديم اقتراحات لدعم الثقافة العربية", "description": None,
         "tags": {"metaData": {"משרד": [{"title": "وزارة الثقافة"}]},
                  "promotedMetaData": {"תאריך אחרון להגשה": [{"title": "01.09.2017"}]}}},
        {"url": "https://www.mof.gov.il/call.pdf", "isExternal": True,
         "title": "Call for sports clubs", "description": "Sport &amp; culture",
         "tags": {"metaData": {"משרד": [{"title": "Ministry of Culture"},
                                        {"title": "Sport Administration"}]},
                  "promotedMetaData": None}},
    ]  # fmt: skip
    with serve(build_app(results)) as url:
        arabic, english = (await poll(http, url)).items
    assert arabic.title == "دعوة لتقديم اقتراحات لدعم الثقافة العربية"
    assert (arabic.publisher, arabic.description) == ("وزارة الثقافة", "")
    assert arabic.deadline == datetime(2017, 8, 31, 21, 0, tzinfo=UTC)
    assert arabic.url == "https://www.gov.il/ar/departments/publications/Call_for_bids/culture"
    assert english.key == english.url == "https://www.mof.gov.il/call.pdf"
    assert english.publisher == "Ministry of Culture; Sport Administration"
    assert english.description == "Sport & culture"


async def test_a_result_of_another_shape_is_skipped_and_logged(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    good = tender_results()[:2]
    bad: list[Any] = [
        "not an object",
        {"title": "no url"},
        {"url": "  ", "title": "a blank url"},
        {"url": "/he/x", "title": ["a list"]},
        {"url": "/he/y", "title": "labels not lists", "tags": {"metaData": {"משרד": "x"}}},
    ]
    with serve(build_app([good[0], *bad, good[1]])) as url, caplog.at_level(logging.WARNING):
        batch = await poll(http, url)
    assert [item.title for item in batch.items] == [r["title"] for r in good]
    assert batch.complete
    skipped = [r.getMessage() for r in caplog.records if "a result is skipped" in r.message]
    assert len(skipped) == len(bad)
    assert "url: Field required" in skipped[1]


@pytest.mark.parametrize(("mode", "error"), FAILURES)
@pytest.mark.parametrize("fail_at", [0, 50], ids=["on the first page", "on a later page"])
async def test_a_failing_collector_raises_instead_of_returning_results(
    http: httpx.AsyncClient, mode: Any, error: type[SourceError], fail_at: int
) -> None:
    with serve(build_app(fail=mode, fail_at_skip=fail_at)) as url, pytest.raises(error):
        await poll(http, url)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"total": 3, "message": "השירות אינו זמין"}, id="no results"),
        pytest.param({"results": []}, id="no total"),
        pytest.param([{"url": "/he/x", "title": "t"}], id="a bare list"),
        pytest.param({"total": 1, "results": {"url": "/he/x"}}, id="results not a list"),
    ],
)
async def test_an_answer_of_another_shape_raises(http: httpx.AsyncClient, answer: Any) -> None:
    with (
        serve(build_app(answer=answer)) as url,
        pytest.raises(SourceError, match="not a collector answer"),
    ):
        await poll(http, url)


def test_the_defaults_are_the_gateway_and_budget_keys_query_for_calls() -> None:
    watcher = GovilWatcher.model_validate({"kind": "govil"})
    assert watcher.base_url == "https://openapi-gc.digital.gov.il/pub/cio/govil/rest/collectors/v1"
    assert watcher.collector_path == "/api/DataCollector/GetResults"
    assert watcher.client_config_url == "https://www.gov.il/CollectorsWebApi/client-config.js"
    assert (watcher.origin, watcher.site_url) == ("https://www.gov.il", "https://www.gov.il")
    assert (
        watcher.collector_type == CALL_COLLECTORS == ("reports", "rfp", "drushim", "publicsharing")
    )
    assert (watcher.type_id, watcher.status_id) == (
        "7159e036-77d5-44f9-a1bf-4500e6125bf1",
        "c8ed2e3c-e5a9-4101-93f5-bae798c4ac1d",
    )
    assert (watcher.culture, watcher.page_size, watcher.item_kind) == ("he", 50, Kind.CALL_FOR_BIDS)


def test_a_misspelt_setting_is_refused() -> None:
    with pytest.raises(ValidationError, match="officeid"):
        GovilWatcher.model_validate({"kind": "govil", "officeid": "x"})
