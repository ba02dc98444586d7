"""RssWatcher against every recorded feed, served over real HTTP with its declared headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from agent.errors import SourceBlocked, SourceError
from agent.models import Kind
from tests.conftest import serve
from tests.fakes.feeds import FEEDS, app, declared_headers, feed_files
from watchers.rss import RssWatcher, entry_key, parse_feed

VA = "https://www.va.gov/opa/pressrel/PressArtInternet.cfm?id=5746"
UOL = (
    "https://noticias.uol.com.br/politica/eleicoes/2018/noticias/2018/09/24/"
    "ibope-bolsonaro-perde-de-haddad-ciro-e-alckmin-em-simulacoes-de-2-turno.htm"
)

#: fixture -> (entry count, first key, first title); None = the poll must fail.
EXPECTED: dict[str, tuple[int, str | None, str] | None] = {
    "edge-cases/feedjira_InvalidDateFormat.xml": (
        2,
        "http://example.com/item0",
        "Item 0 with an invalid date",
    ),
    "edge-cases/node-feedparser_saxerror_unescaped-ampersand.xml": (
        3,
        "http://example.com/good",
        "Good Item",
    ),
    "edge-cases/rss-parser_pagination-links.rss": (
        1,
        "a6f22abe-be5c-4a37-8f4b-8be3d69b0235",
        "The First Episode",
    ),
    "edge-cases/simplepie_feed-utf16le_no-bom-no-decl.xml": (
        1,
        "http://example.net/tests/#1.1",
        "Test feed title 1",
    ),
    "edge-cases/simplepie_whitespace-before-xml-declaration.xml": (0, None, ""),
    "feedparser-tests/encoding_bozo_bogus_encoding.xml": (0, None, ""),
    "feedparser-tests/encoding_bozo_invalid-bytes-with-bom.xml": None,
    "feedparser-tests/encoding_http_i18n.xml": (0, None, ""),
    "feedparser-tests/encoding_http_text_xml_charset_overrides_encoding.xml": (0, None, ""),
    "feedparser-tests/encoding_utf-16le-bom.xml": (0, None, ""),
    "feedparser-tests/encoding_utf-8-bom.xml": (0, None, ""),
    "feedparser-tests/illformed_aaa_illformed.xml": None,
    "feedparser-tests/illformed_chardet_windows1255.xml": (1, None, ""),
    "feedparser-tests/illformed_http_high_bit_date.xml": (0, None, ""),
    "feedparser-tests/illformed_rss_empty_document.xml": None,
    "feedparser-tests/illformed_rss_incomplete_cdata.xml": (1, None, ""),
    "feedparser-tests/illformed_rss_item_link_corrupted_ampersands.xml": (
        1,
        "http://link/get?a=1&b=2",
        "",
    ),
    "feedparser-tests/illformed_undeclared_namespace.xml": None,
    "feedparser-tests/wellformed_http_headers_etag.xml": (0, None, ""),
    "feedparser-tests/wellformed_http_headers_last_modified-modified.xml": (0, None, ""),
    "feedparser-tests/wellformed_rss_item_expirationDate.xml": (1, None, ""),
    "feedparser-tests/wellformed_rss_item_guid_not_permalink_not_url.xml": (1, "abc", ""),
    "real-gov/va.gov_rss_PressRel_2021-12-08.xml": (
        7,
        VA,
        "2021 Under Secretary for Health's Robert L. Jesse Award recognizes VA "
        "boundary-breaking innovations",
    ),
    "real-world/braingle_guid-dupes_2014.xml": (1, "http://www.braingle.com/50366.html", "Huh?"),
    "real-world/heise-developer_2016.atom": (
        15,
        "http://heise.de/-3088438",
        "Java-Anwendungsserver: Red Hat gibt WildFly 10 frei",
    ),
    "real-world/oren.ru_windows-1251_2014.xml": (
        10,
        "http://www.oren.ru/news/2743422/",
        "В Бузулуке главные стройплощадки – детсад и Ледовый дворец",
    ),
    "real-world/uol_iso-8859-1-no-xml-decl_2018.rss": (
        15,
        UOL,
        "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno",
    ),
}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """Run the feed server for the module."""
    with serve(app) as url:
        yield url


def watcher(base_url: str, path: str, **settings: object) -> RssWatcher:
    """Build a watcher for a path on the fake server."""
    return RssWatcher.model_validate({"kind": "rss", "url": f"{base_url}/{path}", **settings})


def test_the_expectation_table_covers_every_recorded_feed() -> None:
    assert sorted(EXPECTED) == [p.relative_to(FEEDS).as_posix() for p in feed_files()]


@pytest.mark.parametrize("path", sorted(EXPECTED))
async def test_every_recorded_feed_gives_its_entries_or_fails_loudly(
    base_url: str, http: httpx.AsyncClient, path: str
) -> None:
    expected = EXPECTED[path]
    if expected is None:
        with pytest.raises(SourceError):
            await watcher(base_url, path).poll(http, None)
        return
    count, first_key, first_title = expected
    batch = await watcher(base_url, path).poll(http, None)
    assert len(batch.items) == count
    assert not batch.complete
    assert len({item.key for item in batch.items}) == count
    assert all(item.key and item.kind is Kind.FEED_ENTRY for item in batch.items)
    if count:
        assert first_key is None or batch.items[0].key == first_key
        assert batch.items[0].title == first_title


async def test_hebrew_in_windows_1255_without_declaration_comes_out_as_hebrew(
    base_url: str, http: httpx.AsyncClient
) -> None:
    path = "feedparser-tests/illformed_chardet_windows1255.xml"
    for settings in ({}, {"encoding": "windows-1255"}):
        batch = await watcher(base_url, path, **settings).poll(http, None)
        assert batch.items[0].description.startswith("האם תדפיס נייר של אתר אינטרנט")


async def test_http_charset_decides_how_hebrew_bytes_are_read(
    base_url: str, http: httpx.AsyncClient
) -> None:
    path = "feedparser-tests/illformed_chardet_windows1255.xml"
    path += "?content_type=text/xml;charset=windows-1255"
    batch = await watcher(base_url, path).poll(http, None)
    assert "העתק נאמן למקור" in batch.items[0].description


def test_http_charset_overrides_the_xml_declaration() -> None:
    path = FEEDS / "feedparser-tests/encoding_http_text_xml_charset_overrides_encoding.xml"
    data = path.read_bytes()
    feed = parse_feed(data, declared_headers(data)["content-type"])
    assert feed.encoding == "us-ascii"
    assert not feed.bozo


async def test_hebrew_arabic_and_english_feed_in_utf16le_without_bom_is_read(
    base_url: str, http: httpx.AsyncClient
) -> None:
    batch = await watcher(
        base_url, "generated/multilingual.xml", item_kind="call_for_bids", publisher="האוצר"
    ).poll(http, None)
    hebrew, arabic, english = batch.items
    assert [item.key for item in batch.items] == ["gov-1", "gov-2", "gov-3"]
    assert hebrew.title == "קול קורא לעמותות בתחום החינוך"
    assert hebrew.description == "הגשה עד 1.12.2026 & פרטים"
    assert hebrew.tags == ("חינוך",)
    assert hebrew.published_at == datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
    assert arabic.title == "دعوة لتقديم مقترحات للسلطات المحلية العربية"
    assert arabic.description == "تمويل مشاريع البنية التحتية"
    assert english.title == "Call for proposals: digital services"
    assert english.published_at is None
    assert {item.kind for item in batch.items} == {Kind.CALL_FOR_BIDS}
    assert {item.publisher for item in batch.items} == {"האוצר"}


async def test_publisher_defaults_to_the_feed_title(base_url: str, http: httpx.AsyncClient) -> None:
    batch = await watcher(base_url, "real-gov/va.gov_rss_PressRel_2021-12-08.xml").poll(http, None)
    assert {item.publisher for item in batch.items} == {"VA News Releases"}
    assert batch.items[0].url == VA


async def test_dates_become_utc_and_unreadable_dates_stay_missing(
    base_url: str, http: httpx.AsyncClient
) -> None:
    va = await watcher(base_url, "real-gov/va.gov_rss_PressRel_2021-12-08.xml").poll(http, None)
    assert va.items[0].published_at == datetime(2021, 12, 8, 15, 7, tzinfo=UTC)  # 10:07 EST
    uol = await watcher(base_url, "real-world/uol_iso-8859-1-no-xml-decl_2018.rss").poll(http, None)
    assert {item.published_at for item in uol.items} == {None}
    assert uol.items[0].raw["published"] == "Seg, 24 Set 2018 19:42:40 -0300"


async def test_expiration_date_becomes_the_deadline(base_url: str, http: httpx.AsyncClient) -> None:
    path = "feedparser-tests/wellformed_rss_item_expirationDate.xml"
    batch = await watcher(base_url, path).poll(http, None)
    assert batch.items[0].deadline == datetime(2004, 1, 1, 19, 48, 21, tzinfo=UTC)


async def test_entries_without_guid_are_keyed_by_link(
    base_url: str, http: httpx.AsyncClient
) -> None:
    batch = await watcher(base_url, "real-world/oren.ru_windows-1251_2014.xml").poll(http, None)
    keys = [item.key for item in batch.items]
    assert len(keys) == 10
    assert all(key.startswith("http://www.oren.ru/news/") for key in keys)


async def test_etag_makes_the_second_poll_a_304_with_no_items(
    base_url: str, http: httpx.AsyncClient
) -> None:
    feed = watcher(base_url, "feedparser-tests/wellformed_http_headers_etag.xml")
    first = await feed.poll(http, None)
    assert first.cursor is not None
    assert json.loads(first.cursor) == {"etag": "foo"}
    second = await feed.poll(http, first.cursor)
    assert second.items == []
    assert second.cursor == first.cursor
    assert not second.complete


async def test_last_modified_makes_the_second_poll_a_304(
    base_url: str, http: httpx.AsyncClient
) -> None:
    feed = watcher(base_url, "feedparser-tests/wellformed_http_headers_last_modified-modified.xml")
    first = await feed.poll(http, None)
    assert first.cursor is not None
    assert json.loads(first.cursor) == {"last_modified": "Mon, 03 Apr 2023 01:02:03 GMT"}
    second = await feed.poll(http, first.cursor)
    assert (second.items, second.cursor) == ([], first.cursor)


async def test_a_stale_validator_still_gets_the_full_feed(
    base_url: str, http: httpx.AsyncClient
) -> None:
    feed = watcher(base_url, "real-world/heise-developer_2016.atom")
    batch = await feed.poll(http, json.dumps({"etag": "old"}))
    assert len(batch.items) == 15


@pytest.mark.parametrize(
    ("path", "error"),
    [
        pytest.param(
            "real-gov/va.gov_rss_PressRel_2021-12-08.xml?status=500", SourceError, id="500"
        ),
        pytest.param(
            "real-gov/va.gov_rss_PressRel_2021-12-08.xml?status=403", SourceBlocked, id="403"
        ),
        pytest.param("html", SourceError, id="an html page"),
        pytest.param("missing.xml", SourceError, id="a 404"),
        pytest.param("feedparser-tests/illformed_rss_empty_document.xml", SourceError, id="empty"),
    ],
)
async def test_a_failed_feed_raises_instead_of_looking_empty(
    base_url: str, http: httpx.AsyncClient, path: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await watcher(base_url, path).poll(http, None)


async def test_an_unreachable_feed_raises_source_error(http: httpx.AsyncClient) -> None:
    with serve(app) as gone:
        pass
    with pytest.raises(SourceError):
        await RssWatcher(kind="rss", url=f"{gone}/feed.xml").poll(http, None)


def test_an_unknown_encoding_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="unknown encoding"):
        RssWatcher.model_validate({"kind": "rss", "url": "http://x", "encoding": "klingon"})


def test_a_link_used_as_key_drops_tracking_parameters_and_fragment() -> None:
    entry = {"link": " HTTPS://WWW.Gov.IL/he/news/3?utm_source=rss&id=3#top "}
    assert entry_key(entry) == "https://www.gov.il/he/news/3?id=3"
