"""OcdsWatcher against every recorded OCDS file, served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from agent.errors import SourceError
from agent.models import Kind
from tests.conftest import serve
from tests.fakes.ocds import OCDS, app, ocds_files
from watchers.base import Batch
from watchers.ocds import OcdsWatcher

FICTIONAL = "ocds-213czf-000-00001"
UK = "ocds-b5fd17-2c330cf9-adc8-11e6-9901-0019b9f3037b"
CDMX = "cdmx-mx/release-package_OCDS-87SD3T-SEFIN-DRM-AD-024-2016"

#: fixture -> (items, first key)
EXPECTED = {
    "armenia/release-package_6.json": (100, "AM-PPS-cd59b69d149e811de21d582805b28efa"),
    "cdmx-mx/release-package_OCDS-87SD3T-AD-SF-DRM-063-2015.json": (
        1,
        "OCDS-87SD3T-AD-SF-DRM-063-2015",
    ),
    "cdmx-mx/release-package_OCDS-87SD3T-AD-SF-DRM-065-2015.json": (
        1,
        "OCDS-87SD3T-AD-SF-DRM-065-2015",
    ),
    f"{CDMX}_iso-8859-1.json": (1, "OCDS-87SD3T-SEFIN-DRM-AD-024-2016"),
    f"{CDMX}_utf-8.json": (1, "OCDS-87SD3T-SEFIN-DRM-AD-024-2016"),
    "colombia/release_ocds-k50g02-11-11-452228.json": (1, "ocds-k50g02-11-11-452228"),
    "colombia/release_ocds-k50g02-16-13-5282714_awardCancellation.json": (
        1,
        "ocds-k50g02-16-13-5282714",
    ),
    **{
        f"jalisco-mx/{path.name}": (1, "ocds-xs1qbl-SFIN-03-0007-00-2017")
        for path in sorted((OCDS / "jalisco-mx").iterdir())
    },
    "mexico-apf/record-package_ocds-07smqs-1542970.json": (1, "ocds-07smqs-1542970"),
    "mexico-apf/record-package_ocds-07smqs-993235.json": (1, "ocds-07smqs-993235"),
    "moldova/record_ocds-ngfbwp-19757475.json": (1, "ocds-ngfbwp-19757475"),
    "moldova/release_ocds-ngfbwp-19757475.json": (1, "ocds-ngfbwp-19757475"),
    "nigeria/release_ocds-gyl66f-borbda-3t7hsh.json": (1, "ocds-gyl66f-borbda-3t7hsh"),
    "nsw-au/release-package_0.json": (1, "ocds-43qwtd-RFT-0B980BC7-FB94-5FC4-D587404FC31576A7"),
    "nsw-au/release-package_3.json": (1, "ocds-43qwtd-RFT-05500D53-B15B-C19A-5CA5A30843AC689E"),
    "nsw-au/release-package_7.json": (1, "ocds-43qwtd-RFT-3A97DD20-DEAC-E181-C3F60521D5AA0F5B"),
    "paraguay-dncp/record-package_ocds-03ad3f-193399_v1.0.json": (1, "ocds-03ad3f-193399"),
    "paraguay-dncp/release-package_ocds-03ad3f-246807_contract_v1.0.json": (
        1,
        "ocds-03ad3f-246807",
    ),
    "prozorro-ua/bare-release_ocds-be6bcu-UA-2017-05-22-000501-b.json": (
        1,
        "ocds-be6bcu-UA-2017-05-22-000501-b",
    ),
    "prozorro-ua/record-ocds-be6bcu-UA-2018-06-22-001789-a.json": (
        1,
        "ocds-be6bcu-UA-2018-06-22-001789-a",
    ),
    "prozorro-ua/records_page1.json": (10, "ocds-be6bcu-UA-2018-06-22-001789-a"),
    "prozorro-ua/release-c3f4965758c9b7391f86c676f59b828a.json": (
        1,
        "ocds-be6bcu-UA-2018-06-22-001789-a",
    ),
    "prozorro-ua/releases_page1.json": (10, "ocds-be6bcu-UA-2018-06-22-001789-a"),
    "standard-fictional/record-package_after-tenderUpdate.json": (1, FICTIONAL),
    "standard-fictional/release-package_02-tender.json": (1, FICTIONAL),
    "standard-fictional/release-package_03-tenderUpdate.json": (1, FICTIONAL),
    "uk-contracts-finder/record_ocds-b5fd17-2c330cf9.json": (1, UK),
    "uk-contracts-finder/release_ocds-b5fd17-2c330cf9_a.json": (1, UK),
    "uk-contracts-finder/release_ocds-b5fd17-2c330cf9_b.json": (1, UK),
}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """Run the OCDS server for the module."""
    with serve(app) as url:
        yield url


async def poll(http: httpx.AsyncClient, url: str, **settings: object) -> Batch:
    """Poll one URL with a freshly configured watcher."""
    watcher = OcdsWatcher.model_validate({"kind": "ocds", "url": url, **settings})
    return await watcher.poll(http, None)


def test_the_expectation_table_covers_every_recorded_ocds_file() -> None:
    assert sorted(EXPECTED) == [p.relative_to(OCDS).as_posix() for p in ocds_files()]


@pytest.mark.parametrize("path", sorted(EXPECTED))
async def test_every_recorded_ocds_shape_gives_one_titled_item_per_ocid(
    base_url: str, http: httpx.AsyncClient, path: str
) -> None:
    count, first_key = EXPECTED[path]
    # One page only: the recorded next links point at the real (unreachable) publishers.
    batch = await poll(http, f"{base_url}/ocds/{path}", max_pages=1)
    assert len(batch.items) == count
    assert batch.items[0].key == first_key
    assert len({item.key for item in batch.items}) == count
    assert all(item.title and item.kind is Kind.TENDER for item in batch.items)
    assert all("_id" not in item.raw and "packageInfo" not in item.raw for item in batch.items)


async def test_the_uk_release_published_twice_becomes_one_item(
    base_url: str, http: httpx.AsyncClient
) -> None:
    batch = await poll(http, f"{base_url}/uk-duplicates.json")
    [item] = batch.items
    assert batch.complete
    assert item.key == UK
    assert item.publisher == "MET OFFICE"  # same date: the copy served last wins
    assert item.title.startswith("Climate Science for Service Partnership")
    assert (item.amount, item.currency, item.status) == (464500.0, "GBP", "unsuccessful")
    assert "73000000" in item.tags


async def test_iso_8859_1_package_reads_the_same_as_its_utf8_twin(
    base_url: str, http: httpx.AsyncClient
) -> None:
    latin = await poll(http, f"{base_url}/ocds/{CDMX}_iso-8859-1.json")
    utf8 = await poll(http, f"{base_url}/ocds/{CDMX}_utf-8.json")
    assert latin.items == utf8.items
    assert latin.items[0].title == "MANTENIMIENTO A MÁQUINA CORTADORA"
    assert latin.items[0].publisher == "SECRETARÍA DE FINANZAS"


async def test_releases_identical_but_for_date_keep_the_latest(
    base_url: str, http: httpx.AsyncClient
) -> None:
    path = "cdmx-mx/release-package_OCDS-87SD3T-AD-SF-DRM-063-2015.json"
    [item] = (await poll(http, f"{base_url}/ocds/{path}")).items
    assert item.published_at == datetime(2017, 6, 5, 6, 0, tzinfo=UTC)
    assert item.raw["id"] == "02"


async def test_tender_update_changes_the_item(base_url: str, http: httpx.AsyncClient) -> None:
    folder = f"{base_url}/ocds/standard-fictional"
    [tender] = (await poll(http, f"{folder}/release-package_02-tender.json")).items
    [update] = (await poll(http, f"{folder}/release-package_03-tenderUpdate.json")).items
    [record] = (await poll(http, f"{folder}/record-package_after-tenderUpdate.json")).items
    assert tender.key == update.key == record.key == FICTIONAL
    assert tender.content_hash() != update.content_hash()
    assert tender.tags[0] == "tender"
    assert update.tags[0] == record.tags[0] == "tenderUpdate"
    assert update.published_at == datetime(2010, 3, 20, 9, 45, tzinfo=UTC)
    assert update.deadline == datetime(2011, 4, 1, 18, 0, tzinfo=UTC)
    assert (update.amount, update.currency) == (1100000.0, "GBP")
    assert update.publisher == "London Borough of Barnet"
    assert update.url == "http://example.com/tender-notices/ocds-213czf-000-00001-01.html"


async def test_ukrainian_and_armenian_text_and_padded_codes_come_through(
    base_url: str, http: httpx.AsyncClient
) -> None:
    records = await poll(http, f"{base_url}/ocds/prozorro-ua/records_page1.json", max_pages=1)
    first = records.items[0]
    assert first.title == "Капремонт вуличного освітлення с.Сенча"
    assert (first.publisher or "").startswith("СЕНЧАНСЬКИЙ")
    assert "45450000-6" in first.tags
    assert "compiled" not in first.tags
    armenia = await poll(http, f"{base_url}/ocds/armenia/release-package_6.json", max_pages=1)
    assert armenia.items[0].title == "հաշիվ ապրանքագիր"
    tags = [tag for item in armenia.items for tag in item.tags]
    assert tags, "the Armenian releases carry release tags and item codes"
    assert all(tag == tag.strip() for tag in tags)


async def test_mojibake_in_the_source_is_kept_as_published(
    base_url: str, http: httpx.AsyncClient
) -> None:
    path = "colombia/release_ocds-k50g02-11-11-452228.json"
    [item] = (await poll(http, f"{base_url}/ocds/{path}")).items
    assert item.publisher == "CUNDINAMARCA - ALCALD\ufffdA MUNICIPIO DE SIBAT\ufffd"


async def test_placeholder_and_empty_amounts_count_as_unknown(
    base_url: str, http: httpx.AsyncClient
) -> None:
    for path in (
        "nigeria/release_ocds-gyl66f-borbda-3t7hsh.json",
        "moldova/release_ocds-ngfbwp-19757475.json",
    ):
        [item] = (await poll(http, f"{base_url}/ocds/{path}")).items
        assert (item.amount, item.currency) == (None, None)
    armenia = await poll(http, f"{base_url}/ocds/armenia/release-package_6.json", max_pages=1)
    placeholder = next(
        i for i in armenia.items if i.key == "AM-PPS-a14a8be9fc2061b9b17d639ba59c2434"
    )
    assert placeholder.amount is None


async def test_off_codelist_status_is_kept_as_published(
    base_url: str, http: httpx.AsyncClient
) -> None:
    [item] = (await poll(http, f"{base_url}/ocds/moldova/record_ocds-ngfbwp-19757475.json")).items
    assert item.status == "Evaluarea ofertelor"


async def test_publisher_name_fills_in_when_no_buyer_is_named(
    base_url: str, http: httpx.AsyncClient
) -> None:
    path = "paraguay-dncp/release-package_ocds-03ad3f-246807_contract_v1.0.json"
    batch = await poll(
        http, f"{base_url}/ocds/{path}", publisher_name="DNCP Paraguay", item_kind="contract"
    )
    [item] = batch.items
    assert (item.publisher, item.kind, item.amount) == ("DNCP Paraguay", Kind.CONTRACT, 17875000.0)


async def test_prozorro_next_link_is_followed_and_made_absolute(
    base_url: str, http: httpx.AsyncClient
) -> None:
    records = "/chain/prozorro-ua/records_page1.json%3Fnext=self"
    url = f"{base_url}/chain/prozorro-ua/releases_page1.json?next={records}"
    batch = await poll(http, url)
    assert len(batch.items) == 10  # the same ten processes on both pages: one item each
    assert batch.complete
    # The record's compiled state is newer than the contract release on page one.
    assert batch.items[1].title.startswith("(ДК 021-2015, 45000000-7")


async def test_armenian_next_page_uri_is_followed(base_url: str, http: httpx.AsyncClient) -> None:
    url = (
        f"{base_url}/chain/armenia/release-package_6.json?next=/ocds/nsw-au/release-package_0.json"
    )
    batch = await poll(http, url)
    assert len(batch.items) == 101
    assert batch.complete


async def test_paging_stops_at_max_pages_and_says_the_batch_is_partial(
    base_url: str, http: httpx.AsyncClient
) -> None:
    url = (
        f"{base_url}/chain/armenia/release-package_6.json?next=/ocds/nsw-au/release-package_0.json"
    )
    batch = await poll(http, url, max_pages=1)
    assert (len(batch.items), batch.complete) == (100, False)
    unfollowed = await poll(http, url, follow_next=False)
    assert (len(unfollowed.items), unfollowed.complete) == (100, False)


async def test_a_next_link_back_to_a_read_page_ends_the_poll(
    base_url: str, http: httpx.AsyncClient
) -> None:
    looping = "/chain/nsw-au/release-package_3.json%3Fnext=self"
    url = f"{base_url}/chain/nsw-au/release-package_0.json?next={looping}"
    batch = await poll(http, url)
    assert len(batch.items) == 2
    assert batch.complete


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/html", id="an html page"),
        pytest.param("/ocds/nsw-au/release-package_0.json?status=500", id="a 500"),
        pytest.param("/truncated/nsw-au/release-package_0.json", id="truncated json"),
        pytest.param("/chain/nsw-au/release-package_0.json?next=/html", id="a bad second page"),
        pytest.param("/ocds/missing.json", id="a 404"),
    ],
)
async def test_a_broken_answer_raises_source_error(
    base_url: str, http: httpx.AsyncClient, path: str
) -> None:
    with pytest.raises(SourceError):
        await poll(http, f"{base_url}{path}")
