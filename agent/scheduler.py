"""``serve``: the scheduler, the dispatcher and the HTTP server in one event loop.

APScheduler 3 (one ``AsyncIOScheduler``, memory job store rebuilt from the
configuration at start) runs one job per enabled source on its own interval,
and the dispatcher every ``agent.dispatch_every``. Jobs never overlap
(``max_instances=1``) and missed runs collapse into one (``coalesce``). All
state lives in the database, so the scheduler holds nothing worth keeping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from agent.config import Config
from agent.service import Agent
from agent.web import create_app

logger = logging.getLogger(__name__)


def schedule(agent: Agent, scheduler: AsyncIOScheduler) -> None:
    """Add a poll job per enabled source and the dispatch job."""
    for name, source in agent.config.sources.items():
        if source.enabled:
            _every(scheduler, agent.poll, source.every, args=[name], job_id=f"poll:{name}")
    _every(scheduler, agent.dispatch, agent.config.agent.dispatch_every, job_id="dispatch")


def _every(
    scheduler: AsyncIOScheduler,
    func: Callable[..., Any],
    period: timedelta,
    *,
    job_id: str,
    args: list[str] | None = None,
) -> None:
    seconds = period.total_seconds()
    scheduler.add_job(
        func,
        IntervalTrigger(seconds=seconds, jitter=max(int(seconds / 10), 1)),
        args=args or [],
        id=job_id,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(int(seconds / 2), 1),
        # Run once right away rather than a whole interval after start-up.
        next_run_time=datetime.now(UTC),
    )


async def serve_forever(config: Config) -> None:
    """Serve until SIGINT or SIGTERM."""
    async with Agent.open(config) as agent:
        app = create_app(agent.db, agent.renderer, agent.links, clock=agent.clock)
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=config.server.host, port=config.server.port, log_level="warning"
            )
        )
        scheduler = AsyncIOScheduler(timezone=config.agent.timezone)
        schedule(agent, scheduler)
        scheduler.start()
        logger.info(
            "serving on http://%s:%d (health at /health); %d sources scheduled",
            config.server.host,
            config.server.port,
            len(config.sources),
        )
        try:
            # uvicorn handles SIGINT and SIGTERM and returns from serve().
            await server.serve()
        finally:
            scheduler.shutdown(wait=False)
