"""Scheduling: one job per source, the dispatcher, and quicker retries after a failure."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from agent.config import build_config
from agent.scheduler import RETRY_CAP, Poller, retry_after, schedule
from agent.service import Agent
from tests.conftest import NOW, serve
from tests.fakes import ckan


@pytest.mark.parametrize(
    ("failures", "every", "expected"),
    [
        pytest.param(1, timedelta(hours=6), timedelta(seconds=30), id="first retry in 30 s"),
        pytest.param(3, timedelta(hours=6), timedelta(minutes=2), id="doubling with each failure"),
        pytest.param(20, timedelta(hours=6), RETRY_CAP, id="capped at an hour"),
        pytest.param(1, timedelta(seconds=20), None, id="no retry when the interval is sooner"),
    ],
)
def test_retry_after(failures: int, every: timedelta, expected: timedelta | None) -> None:
    assert retry_after(failures, every) == expected


async def test_a_failing_source_is_retried_sooner_and_every_source_is_scheduled(
    tmp_path: Path,
) -> None:
    with serve(ckan.build_app(fail="500")) as url:
        config = build_config(
            {
                "agent": {"database_url": f"sqlite:///{tmp_path / 'a.db'}"},
                "sources": {
                    "broken": {"kind": "ckan", "base_url": url, "every": "PT6H"},
                    "off": {"kind": "ckan", "base_url": url, "enabled": False},
                },
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=lambda: NOW) as agent:
            scheduler = AsyncIOScheduler(timezone="UTC")
            schedule(agent, scheduler)
            assert {job.id for job in scheduler.get_jobs()} == {"poll:broken", "dispatch"}
            poller = Poller(agent, scheduler, "broken", timedelta(hours=6))
            await poller()
    retry = scheduler.get_job("retry:broken")
    assert retry is not None
    assert poller.failures == 1
    assert NOW + timedelta(seconds=15) <= retry.trigger.run_date <= NOW + timedelta(seconds=30)
