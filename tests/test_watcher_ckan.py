"""CkanWatcher against a CKAN server that serves the real 2017 mr.gov.il rows."""

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
from tests.fakes.ckan import EXEMPTIONS_RESOURCE, MODIFIED, build_app, real_records, registers
from tests.fakes.jsonapi import FAILURES
from tests.fakes.mrgov import (
    EXEMPTION_COLUMNS_2026,
    TENDER_COLUMNS_2026,
    exemptions,
    exemptions_2026,
    office_tenders,
    tenders_2026,
)
from watchers.base import Batch
from watchers.ckan import CkanWatcher

#: A real demo.ckan.org dataset whose one resource has an active datastore.
DEMO_ACTIVE = "17be64bb-da74-4195-9bb8-565c39846af2"
DEMO_ACTIVE_RESOURCE = "a5cd573b-5565-48f1-9b2d-8726004cb020"
#: A real demo.ckan.org dataset whose one resource has no datastore.
DEMO_INACTIVE = "62513382-3b26-4bc8-9096-40b6ce8383c0"


async def poll(http: httpx.AsyncClient, base_url: str, **settings: Any) -> Batch:
    """Poll with a freshly configured watcher pointed at ``base_url``."""
    watcher = CkanWatcher.model_validate({"kind": "ckan", "base_url": base_url, **settings})
    return await watcher.poll(http, None)


def by_key(batch: Batch) -> dict[str, Item]:
    """Index a batch's items by key."""
    return {item.key: item for item in batch.items}


async def test_the_register_gives_every_tender_and_exemption_with_the_dataset_cursor(
    http: httpx.AsyncClient,
) -> None:
    with serve(build_app()) as url:
        batch = await poll(http, url)
    assert len(batch.items) == 21
    assert batch.complete
    assert batch.cursor == MODIFIED
    kinds = [item.kind for item in batch.items]
    assert kinds.count(Kind.TENDER) == 11
    assert kinds.count(Kind.EXEMPTION) == 10


async def test_data_gov_il_is_asked_as_budget_keys_client_asks(http: httpx.AsyncClient) -> None:
    app = build_app()
    with serve(app) as url:
        await poll(http, url)
    assert {call["user-agent"] for call in app.state.calls} == {"datagov-external-client"}


@pytest.mark.parametrize(
    ("dataset", "kind", "columns"),
    [
        pytest.param("tenders", Kind.TENDER, TENDER_COLUMNS_2026, id="tenders"),
        pytest.param("exemptions", Kind.EXEMPTION, EXEMPTION_COLUMNS_2026, id="exemptions"),
    ],
)
async def test_each_2026_register_is_its_own_dataset(
    http: httpx.AsyncClient, dataset: str, kind: Kind, columns: tuple[str, ...]
) -> None:
    app = build_app(tables=registers())
    with serve(app) as url:
        batch = await poll(http, url, dataset=dataset)
    resource_id, rows = registers()[dataset]
    assert len(batch.items) == len(rows) == {"tenders": 11, "exemptions": 10}[dataset]
    assert {item.kind for item in batch.items} == {kind}
    assert {tuple(item.raw) for item in batch.items} == {("_id", *columns)}
    assert {call["resource_id"] for call in app.state.calls} == {resource_id}


async def test_a_2026_exemption_has_an_ils_amount_and_its_supplier(
    http: httpx.AsyncClient,
) -> None:
    with serve(build_app(tables=registers())) as url:
        items = by_key(await poll(http, url, dataset="exemptions"))
    item = items["exemptions/600009/none"]
    assert (item.raw["היקף כספי"], item.raw["מטבע"]) == ("15191", "ILS")
    assert (item.amount, item.currency) == (15191.0, "ILS")
    assert item.description.splitlines() == [
        "תקנה: התקשרות המשך באישור ועדת מכרזים משרדית",
        'שם ספק: קומדע בע"מ',
        "מהות החלטה: נרשם",
    ]
    assert items["exemptions/600083/none"].amount == 38_536_522.0


async def test_a_plain_amount_keeps_its_agorot(http: httpx.AsyncClient) -> None:
    row = {**exemptions_2026()[0], "היקף כספי": "222177.66"}
    with serve(build_app([row])) as url:
        (item,) = (await poll(http, url)).items
    assert (item.amount, item.currency) == (222177.66, "ILS")


async def test_a_2026_tender_has_no_amount_and_shows_its_basket(http: httpx.AsyncClient) -> None:
    rows = tenders_2026()
    rows[0] = {**rows[0], "שם הסל": "ריהוט משרדי", "שם ספק זוכה": 'רהיטי כתר בע"מ'}
    with serve(build_app(rows)) as url:
        batch = await poll(http, url)
    assert [(item.amount, item.currency) for item in batch.items] == [(None, None)] * 11
    first = by_key(batch)[f"office/{rows[0]['מספר פרסום']}/{rows[0]['מספר הליך']}"]
    assert first.description == 'שם ספק זוכה: רהיטי כתר בע"מ\nשם הסל: ריהוט משרדי'


async def test_the_older_columns_give_the_same_items_as_the_2026_ones(
    http: httpx.AsyncClient,
) -> None:
    older_rows = [*office_tenders(), *exemptions()]
    assert "היקף כספי" in older_rows[0]
    assert "היקף כספי" not in real_records()[0]
    with serve(build_app(older_rows)) as url:
        older = await poll(http, url)
    with serve(build_app()) as url:
        current = await poll(http, url)
    assert len(older.items) == len(current.items) == 21
    assert [i.model_dump(exclude={"raw"}) for i in older.items] == [
        i.model_dump(exclude={"raw"}) for i in current.items
    ]
    exemption = by_key(older)["exemptions/600009/none"]
    assert (exemption.raw["מטבע"], exemption.raw["היקף כספי"]) == ('ש"ח', "15,191")
    assert (exemption.amount, exemption.currency) == (15191.0, "ILS")


async def test_a_row_of_another_shape_is_skipped_and_logged(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    good = exemptions_2026()[:2]
    bad: list[Any] = [
        "a row as text",
        ["a", "row", "as", "a", "list"],
        {**good[0], "מספר פרסום": "700001", "שם הליך": {"he": "שם"}},
        {**good[0], "מספר פרסום": "700002", "נושאים": ["תוכנות", "שרתים"]},
        {**good[0], "מספר פרסום": ""},
    ]
    with serve(build_app([good[0], *bad, good[1]])) as url, caplog.at_level(logging.WARNING):
        batch = await poll(http, url)
    assert [item.raw["מספר פרסום"] for item in batch.items] == ["600009", "600107"]
    assert batch.complete
    skipped = [r.getMessage() for r in caplog.records if "a row is skipped" in r.message]
    assert len(skipped) == len(bad)
    assert "(a str, not an object)" in skipped[0]
    assert "(a dict where a value belongs)" in skipped[2]
    assert "(no מספר פרסום)" in skipped[4]


async def test_a_tender_keeps_its_slashed_number_and_its_israeli_deadline_hour(
    http: httpx.AsyncClient,
) -> None:
    with serve(build_app()) as url:
        item = by_key(await poll(http, url))["office/596915/04/2017"]
    assert item.title.startswith("מכרז למתן שירותי ליווי וייעוץ הנדסי")
    assert (item.publisher, item.publishing_unit) == ("משרד האוצר", "החשב הכללי")
    # 13:00 on 25.07.2017 in Jerusalem is summer time (UTC+3).
    assert item.deadline == datetime(2017, 7, 25, 10, 0, tzinfo=UTC)
    assert item.published_at == datetime(2017, 4, 25, 21, 0, tzinfo=UTC)
    assert item.status == "עודכן"
    assert item.url == "https://mr.gov.il/ilgstorefront/he/p/596915"
    assert item.tags[:2] == ("שירותי יעוץ משפטי", "שירותי כוח אדם")
    assert item.raw["מספר הליך"] == "04/2017"
    # One table holding both registers: a column of the other register is null.
    assert (item.raw["שם ספק"], item.raw["שם הסל"]) == (None, "")


async def test_a_date_without_an_hour_is_midnight_in_jerusalem(http: httpx.AsyncClient) -> None:
    with serve(build_app()) as url:
        item = by_key(await poll(http, url))["office/598885/3/17"]
    assert item.title == "מתן שירותי כוח אדם זמני בעיתות חירום"
    assert item.deadline == datetime(2017, 7, 9, 21, 0, tzinfo=UTC)


async def test_a_multi_line_title_is_one_line(http: httpx.AsyncClient) -> None:
    with serve(build_app()) as url:
        item = by_key(await poll(http, url))["office/598898/7/2017"]
    assert "\n" not in item.title
    assert item.title.startswith("מכרז פומבי מספר 7/2017 לאספקה, התקנה ותחזוקת 2 דחסניות")


async def test_an_exemption_has_amount_supplier_and_no_tender_number(
    http: httpx.AsyncClient,
) -> None:
    with serve(build_app()) as url:
        items = by_key(await poll(http, url))
    item = items["exemptions/600009/none"]
    assert item.kind is Kind.EXEMPTION
    assert (item.amount, item.currency) == (15191.0, "ILS")
    assert 'שם ספק: קומדע בע"מ' in item.description.splitlines()
    assert item.status == "נרשם"
    assert item.tags == ("תוכנות", "שרתים")
    assert item.deadline is None
    assert items["exemptions/599661/none"].amount == 160_000_000.0


async def test_a_zero_amount_means_unknown(http: httpx.AsyncClient) -> None:
    with serve(build_app()) as url:
        item = by_key(await poll(http, url))["exemptions/600107/none"]
    assert (item.amount, item.currency) == (None, None)
    assert item.status == "טרום החלטת ועדה"


async def test_either_supplier_column_spelling_is_read(http: httpx.AsyncClient) -> None:
    with serve(build_app(exemptions(supplier_column="שם ספק זוכה"))) as url:
        item = by_key(await poll(http, url))["exemptions/600009/none"]
    assert 'שם ספק זוכה: קומדע בע"מ' in item.description.splitlines()


async def test_paging_follows_offsets_not_the_next_link(http: httpx.AsyncClient) -> None:
    app = build_app()
    with serve(app) as url:
        batch = await poll(http, url, page_size=4)
    assert len(batch.items) == 21
    assert batch.complete
    assert [call["offset"] for call in app.state.calls] == ["0", "4", "8", "12", "16", "20"]
    assert {call["sort"] for call in app.state.calls} == {"_id"}


async def test_a_silently_capped_limit_still_reads_every_row(http: httpx.AsyncClient) -> None:
    app = build_app(rows_max=5)
    with serve(app) as url:
        batch = await poll(http, url, page_size=1000)
    assert len(batch.items) == 21
    assert [call["offset"] for call in app.state.calls] == ["0", "5", "10", "15", "20"]


async def test_the_page_cap_gives_an_incomplete_batch(http: httpx.AsyncClient) -> None:
    with serve(build_app()) as url:
        batch = await poll(http, url, page_size=5, max_pages=2)
    assert len(batch.items) == 10
    assert not batch.complete


async def test_an_empty_table_is_a_complete_empty_batch(http: httpx.AsyncClient) -> None:
    with serve(build_app([])) as url:
        batch = await poll(http, url)
    assert batch.items == []
    assert batch.complete


async def test_a_row_repeated_across_pages_is_one_item(http: httpx.AsyncClient) -> None:
    tenders = office_tenders()
    with serve(build_app([*tenders[:3], tenders[2], *tenders[3:]])) as url:
        batch = await poll(http, url, page_size=3)
    assert len(batch.items) == 11


async def test_a_row_without_its_publication_number_is_skipped(http: httpx.AsyncClient) -> None:
    broken = {**tenders_2026()[0], "מספר פרסום": ""}
    with serve(build_app([broken, *exemptions_2026()])) as url:
        batch = await poll(http, url)
    assert len(batch.items) == 10
    assert {item.kind for item in batch.items} == {Kind.EXEMPTION}


@pytest.mark.parametrize(
    ("mode", "error"),
    FAILURES,
)
@pytest.mark.parametrize("fail_at", [0, 10], ids=["on the first page", "on a later page"])
async def test_a_failing_datastore_raises_instead_of_returning_rows(
    http: httpx.AsyncClient, mode: Any, error: type[SourceError], fail_at: int
) -> None:
    with serve(build_app(fail=mode, fail_at_offset=fail_at)) as url, pytest.raises(error):
        await poll(http, url, page_size=5)


async def test_ckan_success_false_raises(http: httpx.AsyncClient) -> None:
    with (
        serve(build_app(success_false=True)) as url,
        pytest.raises(SourceError, match="success is not true: Internal error"),
    ):
        await poll(http, url)


async def test_an_unknown_dataset_raises(http: httpx.AsyncClient) -> None:
    with serve(build_app()) as url, pytest.raises(SourceError, match="HTTP 404"):
        await poll(http, url, dataset="no-such-dataset")


async def test_the_resource_is_found_in_a_real_demo_ckan_package(
    http: httpx.AsyncClient,
) -> None:
    app = build_app(dataset="unused", resource_id=DEMO_ACTIVE_RESOURCE)
    with serve(app) as url:
        batch = await poll(http, url, dataset=DEMO_ACTIVE)
    assert batch.cursor == "2017-07-05T19:29:07.136124"
    assert len(batch.items) == 21
    assert {call["resource_id"] for call in app.state.calls} == {DEMO_ACTIVE_RESOURCE}


async def test_a_real_package_without_an_active_datastore_raises(
    http: httpx.AsyncClient,
) -> None:
    with (
        serve(build_app()) as url,
        pytest.raises(SourceError, match="no resource has an active datastore"),
    ):
        await poll(http, url, dataset=DEMO_INACTIVE)


async def test_a_configured_resource_needs_no_package(http: httpx.AsyncClient) -> None:
    with serve(build_app(tables=registers())) as url:
        batch = await poll(http, url, dataset=None, resource_id=EXEMPTIONS_RESOURCE)
    assert len(batch.items) == 10
    assert batch.cursor is None


async def test_another_portal_maps_its_own_columns_in_arabic_and_english(
    http: httpx.AsyncClient,
) -> None:
    rows = [
        {"ref": "A-17", "name": "مناقصة لتوريد معدات طبية", "agency": "وزارة الصحة",
         "opens": "2017-06-08", "closes": "10/07/2017", "value": "1,250", "topics": "صحة;معدات"},
        {"ref": "B-18", "name": "Supply of school books", "agency": "Ministry of Education",
         "opens": "2017-06-09", "closes": "", "value": "", "topics": "education"},
    ]  # fmt: skip
    columns = {
        "key": ["ref"], "tender_type": [], "publication_id": ["ref"], "title": ["name"],
        "publisher": ["agency"], "published": ["opens"], "deadline_date": ["closes"],
        "amount": ["value"], "tags": ["topics"], "description": [],
    }  # fmt: skip
    settings = {"item_kind": "call_for_bids", "columns": columns, "url_template": None}
    with serve(build_app(rows)) as url:
        batch = await poll(http, url, **settings)
    arabic, english = by_key(batch)["A-17"], by_key(batch)["B-18"]
    assert (arabic.title, arabic.publisher) == ("مناقصة لتوريد معدات طبية", "وزارة الصحة")
    assert arabic.kind is Kind.CALL_FOR_BIDS
    assert arabic.tags == ("صحة", "معدات")
    assert arabic.deadline == datetime(2017, 7, 9, 21, 0, tzinfo=UTC)
    assert (arabic.amount, arabic.currency) == (1250.0, "ILS")
    assert (english.title, english.deadline, english.url) == ("Supply of school books", None, None)


def test_a_watcher_needs_a_dataset_or_a_resource() -> None:
    with pytest.raises(ValidationError, match="set dataset or resource_id"):
        CkanWatcher.model_validate({"kind": "ckan", "dataset": None})


def test_a_misspelt_column_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="titel"):
        CkanWatcher.model_validate({"kind": "ckan", "columns": {"titel": ["שם"]}})


def test_the_defaults_point_at_data_gov_il_tenders() -> None:
    watcher = CkanWatcher.model_validate({"kind": "ckan"})
    assert (watcher.base_url, watcher.dataset, watcher.page_size) == (
        "https://data.gov.il",
        "tenders",
        1000,
    )
    assert len(real_records()) == 21
