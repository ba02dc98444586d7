"""Backtesting rules over the stored history, and diffing an edit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from agent import backtest
from agent import db as database
from agent.config import AgentSettings
from agent.matching import Matcher
from agent.pipeline import poll
from agent.rules import RuleSpec, parse_query
from tests import databases
from tests.conftest import serve
from tests.fakes import ckan
from watchers.ckan import CkanWatcher

NOW = datetime(2017, 9, 1, tzinfo=UTC)
SINCE = NOW - timedelta(days=180)


@pytest.fixture
async def history(tmp_path: Path) -> AsyncIterator[Engine]:
    """A store holding the 21 recorded tenders and exemptions."""
    db = database.connect(databases.url(tmp_path))
    database.init(db)
    with serve(ckan.build_app()) as url:
        async with httpx.AsyncClient() as http:
            await poll(
                "tenders",
                CkanWatcher(kind="ckan", base_url=url),
                db=db,
                http=http,
                matcher=Matcher(),
                settings=AgentSettings(),
                channels=(),
                now=NOW,
            )
    yield db
    db.dispose()


def test_a_rule_is_counted_per_week_with_its_newest_matches(history: Engine) -> None:
    with Session(history) as session:
        result = backtest.backtest(session, parse_query("שירותי"), since=SINCE, until=NOW)
    assert result.hits, "the recorded tenders offer services"
    assert sum(count for _, count in result.per_week()) == len(result.hits)
    assert all(week.weekday() == 6 for week, _ in result.per_week()), "weeks start on Sunday"
    dates = [hit.at for hit in result.hits]
    assert dates == sorted(dates, reverse=True)
    assert all(hit.reasons for hit in result.hits)
    assert result.per_day() > 0


def test_a_rule_that_matches_nothing_has_empty_weeks(history: Engine) -> None:
    with Session(history) as session:
        result = backtest.backtest(session, parse_query("צוללות"), since=SINCE, until=NOW)
    assert result.hits == []
    assert {count for _, count in result.per_week()} == {0}


def test_diff_shows_what_an_edit_adds_and_removes(history: Engine) -> None:
    old = RuleSpec(query="שירותי").compile()
    new = RuleSpec(query="שירותי", kinds=["exemption"]).compile()
    with Session(history) as session:
        everything = backtest.backtest(session, old, since=SINCE, until=NOW).hits
        result = backtest.diff(session, old, new, since=SINCE, until=NOW)
    assert result.added == []
    assert result.removed, "narrowing to exemptions drops the office tenders"
    assert all(hit.event.item.kind != "exemption" for hit in result.removed)
    assert result.kept + len(result.removed) == len(everything)
