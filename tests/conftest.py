"""Shared test helpers: real servers on loopback, recorded fixtures, a fixed clock."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser
from starlette.types import ASGIApp

from agent.rules import RuleSpec
from tests import databases, postgres, selection

#: Fixtures of the fakes, usable from any test module.
pytest_plugins = ["tests.fakes.smtp"]

# python-telegram-bot warns (and warnings are errors) unless this is set.
os.environ.setdefault("PTB_TIMEDELTA", "1")

#: Recorded real data, copied from the project's shared fixtures with each folder's SOURCES.md.
FIXTURES = Path(__file__).resolve().parent / "data"

#: The repository root.
ROOT = Path(__file__).resolve().parents[1]

#: Paths beside the repository that the suite must never read: a fresh clone has none.
OUTSIDE = ROOT.parent
#: What the suite tried to open outside the repository (checked by ``test_fresh_clone``).
OUTSIDE_READS: list[str] = []


#: SQLite databases this process opened since the last test ended (``_databases_from...``).
SQLITE_OPENS: list[str] = []


def _watch_reads(event: str, args: tuple[object, ...]) -> None:
    # An audit hook sees every open() of this process, whoever asks; a read
    # of ../shared (or any sibling of the repository) would pass here and
    # fail on a fresh clone, so it is refused and remembered.
    if event == "sqlite3.connect":
        SQLITE_OPENS.append(str(args[0]))
    if event != "open" or not isinstance(args[0], str | Path):
        return
    path = os.path.abspath(args[0])
    if path.startswith(str(OUTSIDE) + os.sep) and not path.startswith(str(ROOT) + os.sep):
        OUTSIDE_READS.append(path)
        raise PermissionError(f"the tests must not read outside the repository: {path}")


sys.addaudithook(_watch_reads)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if anything read beside the repository, even if it caught the error.

    An xdist worker hands what it saw to the controller (``pytest_testnodedown``),
    which decides. Every process stops its PostgreSQL server, if it started one.
    """
    databases.stop()
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["outside_reads"] = OUTSIDE_READS
    elif OUTSIDE_READS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nthe tests read outside the repository:", *OUTSIDE_READS, sep="\n  ")  # noqa: T201


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """Collect what an xdist worker read beside the repository (``pytest_sessionfinish``)."""
    OUTSIDE_READS.extend(getattr(node, "workeroutput", {}).get("outside_reads", []))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``sqlite_only`` tests off SQLite; on PostgreSQL keep the database's tests only."""
    # The others (``tests.selection``) would do there just what they did on SQLite.
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        reason = marker and databases.sqlite_only_skip(marker.args, databases.BACKEND)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _slowest_first(items)
    if databases.BACKEND is databases.Backend.SQLITE:
        return
    left_out = [item for item in items if not _needs_database(item)]
    config.hook.pytest_deselected(items=left_out)
    items[:] = [item for item in items if _needs_database(item)]


def _needs_database(item: pytest.Item) -> bool:
    return selection.needs_database(item.path)


def _slowest_first(items: list[pytest.Item]) -> None:
    # xdist hands whole modules out in this order: the long ones first (a
    # browser, then ``smart-agent`` child processes), so that the run does not
    # end with one worker busy on a long module and the others idle.
    def weight(item: pytest.Item) -> int:
        if "browser" in getattr(item, "fixturenames", ()):
            return 0
        return 1 if selection.imports(item.path, "tests.service") else 2

    modules: dict[Path, int] = {}
    for item in items:
        modules[item.path] = min(modules.get(item.path, 2), weight(item))
    items.sort(key=lambda item: modules[item.path])


@pytest.fixture(autouse=True)
def _databases_from_tests_databases(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test whose database did not come from ``tests.databases`` (``sqlite_only`` aside)."""
    # A database opened otherwise stays SQLite on the PostgreSQL run; one asked
    # for in a module that ``tests.selection`` leaves out never gets there.
    # Asked now, the test's folder stays until this fixture is done with it.
    folder = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    # Since the last test's end: the module fixtures it set up count too.
    opened = set(SQLITE_OPENS)
    SQLITE_OPENS.clear()
    if databases.asked() and not _needs_database(request.node):
        pytest.fail("asked tests.databases for a database, but the PostgreSQL run leaves it out")
    if request.node.get_closest_marker("sqlite_only") is not None:
        return
    if folder is not None:  # what a child process made there too
        opened.update(str(path) for path in folder.rglob("*.db"))
    stray = sorted(path for path in opened if not databases.handed_out(path))
    if stray:
        pytest.fail(f"opened SQLite {stray}, not from tests.databases (or mark it sqlite_only)")


#: A fixed "now" for tests that do not care about the date.
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

#: The issue's NGO rule, as a query string and as form fields (the same tree).
NGO_QUERY = (
    '(מחשוב OR "שירותי ענן") kind:(tender OR call_for_bids) -publisher:"משרד הביטחון" '
    "amount>=500000 days_left>=10 event:new"
)
NGO_SPEC = RuleSpec(
    query='מחשוב OR "שירותי ענן"',
    kinds=["tender", "call_for_bids"],
    exclude_publishers=["משרד הביטחון"],
    amount_min=500_000,
    min_days_left=10,
    event_types=["new"],
)


@contextlib.contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` on a free loopback port for the duration; yield its base URL."""
    # IPPROTO_TCP explicitly: asyncio turns Nagle off only for sockets that name it, and
    # with Nagle on every answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        host, port = sock.getsockname()
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def fixtures() -> Path:
    """Path of the shared recorded fixtures."""
    assert FIXTURES.is_dir(), f"recorded fixtures not found at {FIXTURES}"
    return FIXTURES


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client, as the agent shares one with every watcher."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium through Playwright, one per test module (``tests.browser``)."""
    from tests.browser import chromium  # here: tests.browser imports this module

    with chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """This process's PostgreSQL server (``tests.databases.server``); skipped without one."""
    return databases.server()


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return postgres.database(postgres_server)
