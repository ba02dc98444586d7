"""``smart-agent sources record``, run as a user runs it, and its recordings served back.

The command polls a local fake as it would a live source, in a child process;
the recording is then served by ``tests/fakes/recorded.py`` and the same watcher
must read the same items from it. No database may appear.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tests.conftest import FIXTURES, serve
from tests.fakes import ckan, recorded
from watchers import Source

#: A real feed (VA news releases, ISO-8859-1), served gzipped behind a redirect.
FEED = FIXTURES / "feeds" / "real-gov" / "va.gov_rss_PressRel_2021-12-08.xml"

CONFIG = """
[sources.tenders]
kind = "ckan"
base_url = "{ckan}"
page_size = 8

[sources.feed]
kind = "rss"
url = "{feeds}/moved.xml"

[sources.broken]
kind = "ckan"
base_url = "{broken}"
page_size = 8
"""


def feeds_app() -> GZipMiddleware:
    """A feed that moved: ``/moved.xml`` redirects (absolute URL) to the gzipped feed."""

    async def moved(request: Request) -> Response:
        return RedirectResponse(str(request.url_for("feed")), status_code=301)

    async def feed(request: Request) -> Response:
        return Response(FEED.read_bytes(), media_type="application/rss+xml")

    app = Starlette(routes=[Route("/moved.xml", moved), Route("/feed.xml", feed, name="feed")])
    return GZipMiddleware(app, minimum_size=0)


@dataclass
class World:
    """The user's folder, with a config naming three loopback sources."""

    folder: Path
    urls: dict[str, str]

    def record(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        """Run ``smart-agent sources record ARGS`` and check its exit status and stderr."""
        result = subprocess.run(
            [sys.executable, "-m", "agent", "--config", "config.toml", "sources", "record", *args],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == code, result.stdout + result.stderr
        for noise in ("Traceback", "Warning", "WARNING"):
            assert noise not in result.stderr, result.stderr
        return result

    def no_database(self) -> None:
        """Recording must not create the database (``var/smart-agent.db`` by default)."""
        assert not (self.folder / "var").exists()
        assert not list(self.folder.rglob("*.db"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("user")
    broken = ckan.build_app(fail="500", fail_at_offset=8)
    with (
        serve(ckan.build_app()) as ckan_url,
        serve(feeds_app()) as feeds_url,
        serve(broken) as broken_url,
    ):
        urls = {"ckan": ckan_url, "feeds": feeds_url, "broken": broken_url}
        (folder / "config.toml").write_text(CONFIG.format(**urls), encoding="utf-8")
        yield World(folder, urls)


def index_of(folder: Path) -> dict[str, Any]:
    index: dict[str, Any] = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    return index


def watcher_for(folder: Path, url: str) -> Any:
    return TypeAdapter(Source).validate_python(recorded.source_config(folder, url))


async def test_a_ckan_source_is_recorded_and_replays_the_same_items(
    world: World, http: httpx.AsyncClient
) -> None:
    out = world.record("tenders", "rec/tenders").stdout
    folder = world.folder / "rec" / "tenders"
    assert "recorded tenders (ckan)" in out
    assert "4 responses" in out
    assert "poll ok: 21 items" in out
    world.no_database()

    index = index_of(folder)
    assert index["source"]["name"] == "tenders"
    assert index["source"]["kind"] == "ckan"
    assert index["source"]["config"]["base_url"] == world.urls["ckan"]
    assert index["outcome"] == {"ok": True, "items": 21, "error": None}
    exchanges = index["exchanges"]
    assert [e["url"].split("?")[0].rsplit("/", 1)[1] for e in exchanges] == [
        "package_show",
        *["datastore_search"] * 3,
    ]
    assert [dict(e["query"]).get("offset") for e in exchanges] == [None, "0", "8", "16"]
    assert all(e["status"] == 200 and e["time"].endswith("+00:00") for e in exchanges)
    # The request headers are kept, here the one the ckan watcher sends data.gov.il.
    assert ["user-agent", "datagov-external-client"] in exchanges[0]["request_headers"]
    for exchange in exchanges:
        body = (folder / exchange["body"]).read_bytes()
        assert exchange["body"].endswith(".json")
        assert len(body) == exchange["bytes"]
        assert json.loads(body)["success"] is True
    stub = (folder / "SOURCES.md").read_text(encoding="utf-8")
    assert "`tenders`" in stub
    assert "bodies/004.json" in stub
    assert "Licence" in stub

    live = watcher_for(folder, world.urls["ckan"])
    expected = await live.poll(http, None)
    app = recorded.build_app(folder)
    with serve(app) as url:
        replayed = await watcher_for(folder, url).poll(http, None)
    assert [i.model_dump() for i in replayed.items] == [i.model_dump() for i in expected.items]
    assert replayed.cursor == expected.cursor
    assert replayed.complete
    assert len(app.state.calls) == len(exchanges)


async def test_redirects_and_gzip_are_recorded_decoded_and_replay(
    world: World, http: httpx.AsyncClient
) -> None:
    out = world.record("feed", "rec/feed").stdout
    folder = world.folder / "rec" / "feed"
    assert "poll ok: 7 items" in out
    world.no_database()

    moved, feed = index_of(folder)["exchanges"]
    assert moved["status"] == 301
    assert dict(moved["headers"])["location"] == f"{world.urls['feeds']}/feed.xml"
    assert feed["status"] == 200
    assert feed["decoded_from"] == "gzip"
    assert dict(feed["headers"])["content-encoding"] == "gzip"
    # Stored as the publisher wrote it, not as it travelled.
    assert (folder / feed["body"]).read_bytes() == FEED.read_bytes()
    assert feed["body"] == "bodies/002.xml"

    with serve(recorded.build_app(folder)) as url:
        answer = await http.get(f"{url}/feed.xml")
        assert "content-encoding" not in answer.headers
        assert answer.content == FEED.read_bytes()
        watcher = watcher_for(folder, url)
        assert watcher.url == f"{url}/moved.xml"
        # The agent's shared client follows redirects; the plain test client does not.
        async with httpx.AsyncClient(follow_redirects=True) as following:
            batch = await watcher.poll(following, None)
    assert len(batch.items) == 7
    assert batch.items[0].url == "https://www.va.gov/opa/pressrel/PressArtInternet.cfm?id=5746"


def test_a_failing_source_is_saved_and_exits_1(world: World) -> None:
    result = world.record("broken", "rec/broken", code=1)
    folder = world.folder / "rec" / "broken"
    assert "poll FAILED" in result.stdout
    assert "error: " in result.stderr
    assert "HTTP 500" in result.stderr
    world.no_database()

    index = index_of(folder)
    assert index["outcome"]["ok"] is False
    assert "HTTP 500" in index["outcome"]["error"]
    statuses = [e["status"] for e in index["exchanges"]]
    assert statuses == [200, 200, 500]
    last = index["exchanges"][-1]
    assert (folder / last["body"]).read_bytes() == b"Internal Server Error"
    assert last["body"] == "bodies/003.txt"


def test_an_unknown_source_exits_2_naming_it(world: World) -> None:
    result = world.record("nope", "rec/nope", code=2)
    assert "'nope'" in result.stderr
    assert "tenders, feed, broken" in result.stderr
    assert not (world.folder / "rec" / "nope").exists()
    world.no_database()


def test_a_non_empty_folder_is_kept_unless_forced(world: World) -> None:
    folder = world.folder / "rec" / "forced"
    (folder / "bodies").mkdir(parents=True)
    (folder / "bodies" / "999.json").write_text("{}", encoding="utf-8")
    (folder / "notes.txt").write_text("mine", encoding="utf-8")

    result = world.record("feed", "rec/forced", code=2)
    assert "not empty" in result.stderr
    assert "--force" in result.stderr
    assert not (folder / "index.json").exists()

    world.record("feed", "rec/forced", "--force")
    assert sorted(p.name for p in (folder / "bodies").iterdir()) == ["001.xml", "002.xml"]
    assert (folder / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert len(index_of(folder)["exchanges"]) == 2


async def test_the_replay_ignores_query_order_and_lists_what_it_has(
    world: World, http: httpx.AsyncClient
) -> None:
    world.record("tenders", "rec/replay")
    folder = world.folder / "rec" / "replay"
    second = index_of(folder)["exchanges"][2]
    with serve(recorded.build_app(folder)) as url:
        action = f"{url}/api/3/action/datastore_search"
        shuffled = list(reversed(second["query"]))
        answer = await http.get(action, params=httpx.QueryParams(shuffled))
        assert answer.status_code == 200
        assert answer.content == (folder / second["body"]).read_bytes()
        assert answer.headers["content-type"] == "application/json; charset=utf-8"

        missing = await http.get(action, params={"offset": "999"})
    assert missing.status_code == 404
    assert "not recorded: GET /api/3/action/datastore_search?offset=999" in missing.text
    assert "GET /api/3/action/package_show?id=tenders" in missing.text
