"""The JSON API's public endpoints over HTTP: items (filtered as rules are), one item, sources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.web.api_schemas import ErrorBody, ItemDetail, ItemList, SourceList
from tests.fakes import ckan
from tests.test_web_api_site import ApiSite, api_site

#: The recorded rows: 11 tenders and 10 exemptions.
ROWS = 21


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[ApiSite]:
    async with api_site(tmp_path) as running:
        yield running


async def get(site: ApiSite, path: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(site.api(path), params=params)


def error_of(response: httpx.Response, status: int) -> ErrorBody:
    """The error body, checked for its status, shape and content type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return ErrorBody.model_validate(response.json())


async def test_items_are_listed_newest_first_a_page_at_a_time(site: ApiSite) -> None:
    first = ItemList.model_validate((await get(site, "/items", per_page=5)).json())
    assert len(first.items) == 5
    assert first.page.total == ROWS
    assert first.page.previous is None
    assert first.page.next is not None
    assert not first.page.limited
    async with httpx.AsyncClient() as http:
        second = ItemList.model_validate((await http.get(first.page.next)).json())
    assert second.page.page == 2
    assert not {i.id for i in first.items} & {i.id for i in second.items}
    last = ItemList.model_validate((await get(site, "/items", per_page=5, page=5)).json())
    assert len(last.items) == 1
    assert last.page.next is None
    beyond = ItemList.model_validate((await get(site, "/items", per_page=5, page=9)).json())
    assert beyond.items == []
    everything = ItemList.model_validate((await get(site, "/items", per_page=100)).json())
    dates = [i.published_at or i.first_seen_at for i in everything.items]
    assert dates == sorted(dates, reverse=True)
    assert all(i.web_url.endswith(f"/items/{i.id}") for i in everything.items)


async def test_items_are_filtered_by_a_rules_fields(site: ApiSite) -> None:
    found = ItemList.model_validate((await get(site, "/items", query="שירותי")).json())
    assert found.items
    assert all("שירותי" in f"{i.title} {i.description} {i.tags}" for i in found.items)
    assert found.page.total == len(found.items)
    tenders = ItemList.model_validate((await get(site, "/items", kinds="tender")).json())
    assert {i.kind for i in tenders.items} == {"tender"}
    async with httpx.AsyncClient() as http:
        both = await http.get(site.api("/items?kinds=tender&kinds=exemption&per_page=100"))
        commas = await http.get(site.api("/items?kinds=tender,exemption&per_page=100"))
    assert ItemList.model_validate(both.json()).page.total == ROWS
    assert both.json()["items"] == commas.json()["items"]


async def test_a_rule_error_names_its_field_and_position(site: ApiSite) -> None:
    body = error_of(await get(site, "/items", query="מחשוב AND (ענן"), 422)
    assert body.errors[0].field == "query"
    assert body.errors[0].position == len("מחשוב AND ")
    assert body.error.startswith("query: ")
    number = error_of(await get(site, "/items", amount_min="lots"), 422)
    assert [(e.field, e.position) for e in number.errors] == [("amount_min", None)]
    kind = error_of(await get(site, "/items", kinds="submarine"), 422)
    assert kind.errors[0].field == "kinds"
    assert "submarine" in kind.errors[0].message


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"per_page": "101"}, "per_page", id="per_page over 100"),
        pytest.param({"per_page": "0"}, "per_page", id="per_page zero"),
        pytest.param({"page": "first"}, "page", id="page not a number"),
        pytest.param({"page": "0"}, "page", id="page zero"),
    ],
)
async def test_paging_is_checked(site: ApiSite, params: dict[str, str], field: str) -> None:
    body = error_of(await get(site, "/items", **params), 422)
    assert [e.field for e in body.errors] == [field]


async def test_an_item_has_its_history(site: ApiSite) -> None:
    listed = ItemList.model_validate((await get(site, "/items", kinds="tender")).json())
    target = listed.items[0]
    # The source moves the tender's deadline; the next poll records the change.
    records = ckan.real_records()
    row = next(r for r in records if r["מספר פרסום"] in target.key)
    row["תאריך אחרון להגשת השגות"] = "30.07.2017"
    site.source.app = ckan.build_app(records)
    await site.agent.poll_all()
    detail = ItemDetail.model_validate((await get(site, f"/items/{target.id}")).json())
    assert [entry.type for entry in detail.history] == ["new", "deadline_changed"]
    change = detail.history[-1].changes["deadline"]
    assert str(change.after).startswith("2017-07-29")
    assert detail.deadline is not None
    assert detail.deadline.day == 29


async def test_an_unknown_item_is_404(site: ApiSite) -> None:
    assert error_of(await get(site, "/items/99999"), 404).error == "no such item"
    error_of(await get(site, "/items/not-a-number"), 404)


async def test_sources_say_their_health_without_error_texts(site: ApiSite) -> None:
    healthy = SourceList.model_validate((await get(site, "/sources")).json())
    assert healthy.status == "ok"
    assert [(s.name, s.status, s.last_item_count) for s in healthy.sources] == [
        ("tenders", "ok", ROWS)
    ]
    site.source.app = ckan.build_app(fail="500")
    await site.agent.poll_all()
    answer = await get(site, "/sources")
    failing = SourceList.model_validate(answer.json())
    assert failing.status == "degraded"
    assert failing.sources[0].status == "failing"
    assert failing.sources[0].consecutive_failures == 1
    assert "last_error" not in answer.text
    assert "500" not in answer.text


async def test_every_error_has_the_one_shape(site: ApiSite) -> None:
    async with httpx.AsyncClient() as http:
        missing = await http.get(site.api("/no-such-thing"))
        wrong_method = await http.put(site.api("/items"))
        outside = await http.get(f"{site.url}/api/v2/items")
    assert error_of(missing, 404).errors == []
    assert error_of(wrong_method, 405).error
    error_of(outside, 404)
