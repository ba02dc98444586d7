"""A malformed answer fails its source alone; a malformed record is skipped and counted.

``run-once`` is run as a user runs it (a child process in a folder of its own):
a source answering JSON nested 100,000 deep, or of the wrong shape, used to
crash the whole command with a traceback, before the next source was polled
and before anything was sent. Each watcher is then given one malformed record
among good ones: it must return the others and count one skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from tests import databases
from tests.conftest import serve
from tests.fakes import budgetkey, ckan, govil, mof, ocds
from tests.user import User, config_text
from watchers import Source

#: An answer nested deeper than Python's json can read (it raises RecursionError).
DEEP = "[" * 100_000 + "]" * 100_000

SUBSCRIPTIONS = """
[[subscriptions]]
name = "temporary staff"
query = '"בעיתות חירום"'
channels = ["email"]
email = "team@ngo.example"
"""


def answering(body: str) -> Starlette:
    """A server that answers ``body`` as JSON, whatever is asked."""

    async def anything(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/{path:path}", anything)])


@pytest.fixture(
    params=[
        pytest.param((DEEP, "nested too deeply"), id="json nested 100,000 deep"),
        pytest.param(
            ('{"success": true, "result": {"resources": 5}}', "no resource"),
            id="a list that is a number",
        ),
    ]
)
def broken(request: pytest.FixtureRequest) -> tuple[str, str]:
    """A broken answer and what its failure must say."""
    body, reason = request.param
    return body, reason


@pytest.fixture
def user(tmp_path: Path, broken: tuple[str, str]) -> Iterator[User]:
    """A user with a broken source listed before a good one, and a subscription."""
    with serve(answering(broken[0])) as bad, serve(ckan.build_app()) as good:
        sources = f"""
[notifiers.email]
from_address = "Smart Agent <alerts@example.org>"

[sources.a-broken]
kind = "ckan"
base_url = "{bad}"

[sources.b-tenders]
kind = "ckan"
base_url = "{good}"
alert_on_first_poll = true
"""
        (tmp_path / "config.toml").write_text(
            config_text(databases.url(tmp_path), sources), encoding="utf-8"
        )
        (tmp_path / "subscriptions.toml").write_text(SUBSCRIPTIONS, encoding="utf-8")
        yield User(tmp_path)


def test_a_broken_source_fails_alone_and_the_others_are_polled_and_sent(
    user: User, broken: tuple[str, str]
) -> None:
    user.run("subscriptions", "import", "subscriptions.toml")
    result = user.run("run-once", code=1)  # stderr has no traceback: checked by run()
    lines = result.stdout.splitlines()
    failed = next(line for line in lines if line.startswith("a-broken:"))
    assert "FAILED" in failed
    assert broken[1] in failed
    assert any(line.startswith("b-tenders: ok; 21 items") for line in lines), result.stdout
    assert "delivered: 1 sent" in result.stdout
    assert len(list((user.folder / "var" / "mail").glob("*.eml"))) == 1
    assert "error: source a-broken failed" in result.stderr
    check = user.run("sources", "check", code=1).stdout
    assert "FAIL a-broken" in check
    assert "ok   b-tenders: 21 items" in check


# --- one malformed record among good ones ---------------------------------------------


def _ocds_package() -> Starlette:
    # Two real releases of different processes, and an entry that is no release.
    folder = ocds.OCDS / "nsw-au"
    releases = [
        json.loads((folder / f"release-package_{n}.json").read_bytes())["releases"][0]
        for n in (3, 7)
    ]
    return answering(json.dumps({"releases": [releases[0], "a release as text", releases[1]]}))


def _tender_docs() -> ASGIApp:
    docs = budgetkey.all_docs()["tenders"]
    docs[0]["volume"] = ["a", "list"]
    return budgetkey.build_app({"tenders": docs})


#: Per watcher: its fake with one malformed record, its settings, and the good records.
ONE_BAD: list[Any] = [
    pytest.param(
        lambda: ckan.build_app([*ckan.real_records()[:3], "a row as text"]),
        lambda url: {"kind": "ckan", "base_url": url},
        3,
        id="ckan",
    ),
    pytest.param(
        lambda: govil.build_app([*govil.tender_results()[:3], {"title": "no url"}]),
        lambda url: {
            "kind": "govil",
            "base_url": f"{url}{govil.GATEWAY}",
            "client_config_url": f"{url}{govil.CLIENT_CONFIG}",
        },
        3,
        id="govil",
    ),
    pytest.param(
        _tender_docs,
        lambda url: {"kind": "budgetkey", "base_url": url, "doc_type": "tenders"},
        20,
        id="budgetkey",
    ),
    pytest.param(_ocds_package, lambda url: {"kind": "ocds", "url": url}, 2, id="ocds"),
]


@pytest.mark.parametrize(("app", "settings", "good"), ONE_BAD)
async def test_one_malformed_record_is_skipped_and_counted(
    http: httpx.AsyncClient,
    app: Callable[[], ASGIApp],
    settings: Callable[[str], dict[str, Any]],
    good: int,
) -> None:
    with serve(app()) as url:
        watcher = TypeAdapter(Source).validate_python(settings(url))
        batch = await watcher.poll(http, None)
    assert (len(batch.items), batch.skipped) == (good, 1)


async def test_malformed_budget_change_rows_are_counted(http: httpx.AsyncClient) -> None:
    with serve(mof.app) as url:
        config = {"kind": "mof_changes", "urls": [f"{url}{mof.BLOB}/x_approv_data.csv?malformed=1"]}
        batch = await TypeAdapter(Source).validate_python(config).poll(http, None)
    assert batch.items
    assert batch.skipped == 4  # a total, a year and an amount that are no numbers, a cut row
