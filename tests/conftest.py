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

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser
from starlette.types import ASGIApp

from agent.rules import RuleSpec

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


def _watch_reads(event: str, args: tuple[object, ...]) -> None:
    # An audit hook sees every open() of this process, whoever asks; a read
    # of ../shared (or any sibling of the repository) would pass here and
    # fail on a fresh clone, so it is refused and remembered.
    if event != "open" or not isinstance(args[0], str | Path):
        return
    path = os.path.abspath(args[0])
    if path.startswith(str(OUTSIDE) + os.sep) and not path.startswith(str(ROOT) + os.sep):
        OUTSIDE_READS.append(path)
        raise PermissionError(f"the tests must not read outside the repository: {path}")


sys.addaudithook(_watch_reads)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if anything read beside the repository, even if it caught the error."""
    if OUTSIDE_READS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nthe tests read outside the repository:", *OUTSIDE_READS, sep="\n  ")  # noqa: T201


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
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server for the whole session (``tests.postgres``); skipped without one."""
    from tests import postgres  # here: it needs the package only when used

    if postgres.BIN is None:
        pytest.skip(postgres.REASON)
    with postgres.server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    from tests import postgres

    return postgres.database(postgres_server)
