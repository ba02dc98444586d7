"""One poll from download to outbox rows: baselines, failures, events and matches."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agent import db as database
from agent import health, subscriptions
from agent.config import AgentSettings
from agent.matching import Matcher
from agent.models import Delivery, SourceState, StoredEvent, StoredItem
from agent.pipeline import PollResult, poll
from tests import databases
from tests.conftest import serve
from tests.fakes import ckan
from tests.fakes.jsonapi import Failure
from watchers.base import Batch, SourceSettings
from watchers.ckan import CkanWatcher

#: Two days before the earliest objection deadline among the recorded tenders.
JULY_2017 = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)


@dataclass
class Setup:
    db: Engine
    http: httpx.AsyncClient
    url: str
    records: list[dict[str, str]]
    matcher: Matcher

    async def poll(
        self, *, now: datetime = JULY_2017, alert_on_first_poll: bool = False
    ) -> PollResult:
        watcher = CkanWatcher(
            kind="ckan", base_url=self.url, alert_on_first_poll=alert_on_first_poll
        )
        return await poll(
            "tenders",
            watcher,
            db=self.db,
            http=self.http,
            matcher=self.matcher,
            settings=AgentSettings(closing_soon_days=3),
            channels={"email", "rss"},
            now=now,
        )

    def count(self, table: type[StoredItem] | type[StoredEvent] | type[Delivery]) -> int:
        with Session(self.db) as session:
            return len(session.exec(select(table)).all())

    def state(self) -> SourceState:
        with Session(self.db) as session:
            state = session.get(SourceState, "tenders")
            assert state is not None
            return state


class Server:
    """A CKAN fake whose answer a test can change or break."""

    def __init__(self) -> None:
        self.records = ckan.real_records()
        self.fail: Failure | None = None

    async def __call__(self, scope: object, receive: object, send: object) -> None:
        app = ckan.build_app(self.records, fail=self.fail)
        await app(scope, receive, send)  # type: ignore[arg-type]


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
def served(server: Server) -> Iterator[str]:
    with serve(server) as url:
        yield url


@pytest.fixture
async def setup(tmp_path: Path, served: str, server: Server) -> AsyncIterator[Setup]:
    db = database.connect(databases.url(tmp_path))
    database.init(db)
    with Session(db) as session:
        entry = subscriptions.SubscriptionInput.model_validate(
            {
                "name": "temp staff",
                "query": '"בעיתות חירום"',
                "channels": ["email", "rss"],
                "email": "a@example.org",
            }
        )
        subscriptions.save(session, entry, now=JULY_2017)
        session.commit()
    async with httpx.AsyncClient() as http:
        yield Setup(db, http, served, server.records, Matcher())
    db.dispose()


async def test_first_poll_records_a_silent_baseline(setup: Setup) -> None:
    result = await setup.poll()
    assert result.ok
    assert result.baseline
    assert setup.count(StoredItem) == 21
    assert setup.count(StoredEvent) == 0
    assert setup.count(Delivery) == 0


async def test_first_poll_alerts_when_the_source_says_so(setup: Setup) -> None:
    result = await setup.poll(alert_on_first_poll=True)
    assert result.events >= 21
    # Only "מתן שירותי כוח אדם זמני בעיתות חירום" matches, on two channels.
    assert result.deliveries == 2


async def test_a_new_row_after_the_baseline_is_new_and_matched(
    setup: Setup, server: Server
) -> None:
    await setup.poll()
    server.records.append(
        {
            **server.records[0],
            "מספר פרסום": "700001",
            "שם הליך": "שירותי כוח אדם בעיתות חירום במרחב הצפון",
        }
    )
    result = await setup.poll()
    assert result.events == 1
    assert result.deliveries == 2
    with Session(setup.db) as session:
        delivery = session.exec(select(Delivery)).first()
        assert delivery is not None
        assert any(reason.get("term") for reason in delivery.reasons), delivery.reasons


@pytest.mark.parametrize("mode", ["500", "403", "html", "truncated"])
async def test_a_failing_source_changes_no_state_and_is_counted(
    setup: Setup, server: Server, mode: Failure
) -> None:
    await setup.poll()
    server.fail = mode
    result = await setup.poll()
    assert not result.ok
    assert setup.count(StoredItem) == 21
    assert setup.state().consecutive_failures == 1
    server.fail = None
    assert (await setup.poll()).events == 0
    assert setup.state().consecutive_failures == 0


async def test_a_listing_that_suddenly_comes_back_empty_is_a_failure(
    setup: Setup, server: Server
) -> None:
    await setup.poll()
    server.records.clear()
    result = await setup.poll()
    assert not result.ok
    assert "no items" in (result.error or "")


async def test_closing_soon_is_emitted_once_per_deadline(setup: Setup) -> None:
    await setup.poll(now=JULY_2017 - timedelta(days=30))
    first = await setup.poll(now=datetime(2017, 7, 8, 9, 0, tzinfo=UTC))
    again = await setup.poll(now=datetime(2017, 7, 9, 9, 0, tzinfo=UTC))
    assert first.events == first.deliveries > 0
    assert again.events == 0
    with Session(setup.db) as session:
        types = {e.type for e in session.exec(select(StoredEvent))}
    assert types == {"closing_soon"}


class Crashing(SourceSettings):
    """A source whose watcher has a bug: every poll raises what no watcher should."""

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Fail as a bug does."""
        raise KeyError("id")


async def test_a_watcher_that_crashes_fails_its_source_alone_without_a_traceback(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="agent.pipeline"):
        result = await poll(
            "broken",
            Crashing(),
            db=setup.db,
            http=setup.http,
            matcher=setup.matcher,
            settings=AgentSettings(),
            channels={"email"},
            now=JULY_2017,
        )
    assert (result.ok, result.error) == (False, "KeyError: 'id'")
    with Session(setup.db) as session:
        state = session.get(SourceState, "broken")
        assert state is not None
        assert (state.last_error, state.consecutive_failures) == ("KeyError: 'id'", 1)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == "source broken failed: KeyError: 'id'"
    assert warning.exc_info is None  # one line in the log; the traceback only with -v
    assert any(r.levelno == logging.DEBUG and r.exc_info for r in caplog.records)
    assert (await setup.poll()).ok


async def test_a_malformed_row_is_skipped_counted_and_shown_in_health(
    setup: Setup, server: Server
) -> None:
    server.records.append("a row as text")  # type: ignore[arg-type]
    result = await setup.poll()
    assert (result.ok, result.items, result.skipped) == (True, 21, 1)
    assert setup.state().last_skipped == 1
    watcher = CkanWatcher(kind="ckan", base_url=setup.url)
    report = health.check(setup.db, {"tenders": watcher}, now=JULY_2017).to_dict()
    assert report["sources"][0]["last_skipped"] == 1
