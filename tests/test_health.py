"""Health that tells the truth: pending, failing since when, stale, and one verdict."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from agent.config import build_config
from agent.errors import ConfigError
from agent.health import ServiceStatus, SourceStatus, source_health, verdict
from agent.models import SourceState
from agent.service import Agent
from agent.web import create_app
from tests import databases
from tests.conftest import NOW, serve
from tests.fakes import ckan

HOUR = timedelta(hours=1)


def _source(**settings: Any) -> Any:
    config = build_config(
        {"sources": {"s": {"kind": "ckan", "every": "PT1H", **settings}}}, base_dir=Path(".")
    )
    return config.sources["s"]


def _state(**fields: Any) -> SourceState:
    return SourceState(name="s", **fields)


def test_a_source_never_polled_is_pending_and_the_service_is_starting() -> None:
    health = source_health("s", _source(), None, now=NOW)
    assert health.status is SourceStatus.PENDING
    assert verdict([health]) is ServiceStatus.STARTING


def test_a_failing_source_says_since_when_and_degrades_the_service() -> None:
    since = NOW - 3 * HOUR
    state = _state(last_attempt_at=NOW, consecutive_failures=4, failing_since=since)
    health = source_health("s", _source(), state, now=NOW)
    assert (health.status, health.since) == (SourceStatus.FAILING, since)
    ok = source_health("t", _source(), _state(last_attempt_at=NOW, last_success_at=NOW), now=NOW)
    assert verdict([ok, health]) is ServiceStatus.DEGRADED


@pytest.mark.parametrize(
    ("settings", "quiet_for", "expected"),
    [
        pytest.param({}, timedelta(days=3), SourceStatus.OK, id="default: at least 4 days"),
        pytest.param({}, timedelta(days=5), SourceStatus.STALE, id="default: stale after 4 days"),
        pytest.param({"every": "P1D"}, timedelta(days=60), SourceStatus.OK, id="72 daily polls"),
        pytest.param({"stale_after": "P14D"}, timedelta(days=13), SourceStatus.OK, id="set: 14d"),
        pytest.param({"stale_after": "P14D"}, timedelta(days=15), SourceStatus.STALE, id="15d"),
        pytest.param({"stale_after": False}, timedelta(days=900), SourceStatus.OK, id="off"),
    ],
)
def test_a_source_that_answers_but_brings_nothing_new_goes_stale(
    settings: dict[str, Any], quiet_for: timedelta, expected: SourceStatus
) -> None:
    changed = NOW - quiet_for
    state = _state(last_attempt_at=NOW, last_success_at=NOW, last_change_at=changed)
    health = source_health("s", _source(**settings), state, now=NOW)
    assert health.status is expected
    if expected is SourceStatus.STALE:
        assert health.since is not None
        assert changed < health.since < NOW
        assert verdict([health]) is ServiceStatus.DEGRADED


def test_disabled_sources_are_shown_but_do_not_count() -> None:
    off = source_health("s", _source(enabled=False), None, now=NOW)
    on = source_health("t", _source(), _state(last_attempt_at=NOW, last_success_at=NOW), now=NOW)
    assert off.status is SourceStatus.DISABLED
    assert verdict([off, on]) is ServiceStatus.OK
    assert verdict([off]) is ServiceStatus.DEGRADED, "nothing enabled is nothing watched"


@pytest.mark.parametrize("bad", ["PT0S", "-P1D", True, "soon"])
def test_a_bad_stale_after_names_the_key(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"sources\.s\.ckan\.stale_after"):
        _source(stale_after=bad)


async def test_health_answers_503_until_every_source_is_polled_then_200(tmp_path: Path) -> None:
    with serve(ckan.build_app()) as url:
        config = build_config(
            {
                "agent": {"database_url": databases.url(tmp_path)},
                "sources": {"tenders": {"kind": "ckan", "base_url": url}},
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=lambda: NOW) as agent:
            app = create_app(agent)
            with serve(app) as site:
                async with httpx.AsyncClient() as http:
                    before = await http.get(f"{site}/health")
                    await agent.poll_all()
                    after = await http.get(f"{site}/health")
                    live = await http.get(f"{site}/health/live")
            with Session(agent.db) as session:
                state = session.get(SourceState, "tenders")
    assert (before.status_code, before.json()["status"]) == (503, "starting")
    assert before.json()["sources"][0]["status"] == "pending"
    assert (after.status_code, after.json()["status"]) == (200, "ok")
    assert after.json()["sources"][0]["last_change_at"] == NOW.isoformat()
    assert live.status_code == 200
    assert state is not None
    assert state.last_change_at == NOW
