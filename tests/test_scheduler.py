"""Scheduling: one job per source, the dispatcher, and quicker retries after a failure.

``tests/test_serve.py`` watches the real ``serve`` do all this from outside; the
last test here runs a job through a real ``AsyncIOScheduler``, in a second, so
a job the scheduler cannot await (a coroutine thrown away) fails fast.
"""

from __future__ import annotations

import asyncio
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel import Session

from agent import subscriptions
from agent.config import build_config
from agent.models import SourceState, Subscription
from agent.scheduler import Poller, purge_job, retry_after, schedule
from agent.service import Agent
from agent.subscriptions import SubscriptionInput
from tests import databases
from tests.conftest import NOW, serve
from tests.fakes import ckan
from tests.samples import Clock


@pytest.mark.parametrize(
    ("failures", "every", "expected"),
    [
        pytest.param(1, timedelta(hours=6), timedelta(seconds=30), id="first retry in 30 s"),
        pytest.param(3, timedelta(hours=6), timedelta(minutes=2), id="doubling with each failure"),
        pytest.param(20, timedelta(hours=6), timedelta(hours=1), id="capped at an hour"),
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
                "agent": {"database_url": databases.url(tmp_path)},
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
            assert {job.id for job in scheduler.get_jobs()} == {"poll:broken", "dispatch", "purge"}
            poller = Poller(agent, scheduler, "broken", timedelta(hours=6))
            await poller.run()
    retry = scheduler.get_job("retry:broken")
    assert retry is not None
    assert poller.failures == 1
    assert NOW + timedelta(seconds=15) <= retry.trigger.run_date <= NOW + timedelta(seconds=30)


def test_retry_after_follows_the_configured_first_delay_and_cap() -> None:
    first, cap = timedelta(seconds=1), timedelta(seconds=5)
    delays = [retry_after(n, timedelta(hours=1), first=first, cap=cap) for n in (1, 2, 3, 4)]
    assert delays == [timedelta(seconds=s) for s in (1, 2, 4, 5)]


async def test_a_real_scheduler_awaits_the_poll_jobs(tmp_path: Path) -> None:
    with serve(ckan.build_app()) as url:
        config = build_config(
            {
                "agent": {"database_url": databases.url(tmp_path)},
                "sources": {"tenders": {"kind": "ckan", "base_url": url, "every": "PT1H"}},
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config) as agent:
            scheduler = AsyncIOScheduler(timezone="UTC")
            assert schedule(agent, scheduler) == 1
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # "coroutine was never awaited" fails here
                scheduler.start()
                try:
                    for _ in range(100):
                        await asyncio.sleep(0.05)
                        with Session(agent.db) as session:
                            state = session.get(SourceState, "tenders")
                        if state is not None and state.last_success_at is not None:
                            break
                finally:
                    scheduler.shutdown(wait=False)
    assert state is not None
    assert state.last_item_count == 21


async def test_the_purge_job_deletes_web_subscriptions_that_never_confirmed(tmp_path: Path) -> None:
    config = build_config(
        {"agent": {"database_url": databases.url(tmp_path), "manage_link_ttl": "P30D"}},
        base_dir=tmp_path,
    )
    clock = Clock(NOW)
    async with Agent.open(config, clock=clock) as agent:
        with Session(agent.db, expire_on_commit=False) as session:
            made = {}
            for name, confirmed in (("waits", False), ("confirmed", True)):
                given = SubscriptionInput.model_validate(
                    {"name": name, "query": "ענן", "channels": ["email"], "email": "a@b.example"}
                )
                made[name] = subscriptions.save(session, given, now=NOW, confirmed=confirmed)
            session.commit()
        clock.now = NOW + timedelta(days=29)
        await purge_job(agent)  # its confirmation link still works: kept
        with Session(agent.db) as session:
            assert session.get(Subscription, made["waits"].id) is not None
        clock.now = NOW + timedelta(days=31)
        await purge_job(agent)
        with Session(agent.db) as session:
            assert session.get(Subscription, made["waits"].id) is None
            assert session.get(Subscription, made["confirmed"].id) is not None
