"""``serve``: the scheduler, the dispatcher and the HTTP server in one event loop.

APScheduler 3 (one ``AsyncIOScheduler``, memory job store rebuilt from the
configuration at start) runs one job per enabled source on its own interval,
right after start-up, and the dispatcher every ``agent.dispatch_every``. Jobs
never overlap (``max_instances=1``) and missed runs collapse into one
(``coalesce``). All state lives in the database, so the scheduler holds
nothing worth keeping. A source an admin disables from the console keeps its
job: each run reads the flag and returns without fetching (``agent.pipeline``),
so enabling it again needs no restart.

Every job is a plain ``async def`` function or bound method: APScheduler 3's
asyncio executor awaits only what ``inspect.iscoroutinefunction`` recognises,
and runs anything else (such as an object with an async ``__call__``) in a
thread, throwing its coroutine away unawaited.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import Session

from agent import retention, subscriptions, throttle
from agent.config import Config
from agent.errors import AgentError
from agent.keys import require_key
from agent.service import Agent
from agent.web import create_app
from notifiers.base import ServiceContext, channel_routes, start_background, stop_background

logger = logging.getLogger(__name__)


def schedule(agent: Agent, scheduler: AsyncIOScheduler) -> int:
    """Add a poll job per enabled source and the dispatch job; return the sources scheduled."""
    pollers = [
        Poller(agent, scheduler, name, source.every)
        for name, source in agent.config.sources.items()
        if source.enabled
    ]
    for poller in pollers:
        _every(scheduler, poller.run, poller.every, job_id=f"poll:{poller.name}")
    _every(
        scheduler,
        functools.partial(dispatch_job, agent),
        agent.config.agent.dispatch_every,
        job_id="dispatch",
    )
    _every(scheduler, functools.partial(purge_job, agent), PURGE_EVERY, job_id="purge")
    return len(pollers)


#: How often subscriptions whose address never confirmed are looked for.
PURGE_EVERY = timedelta(hours=6)


async def purge_job(agent: Agent) -> None:
    """Delete what is kept no longer: unconfirmed sign-ups, old rate counts, old history.

    Unconfirmed subscriptions go once their confirmation link has expired;
    final deliveries and unreferenced events past ``keep_deliveries`` and
    ``keep_events`` (``agent.retention``), so the database stays bounded.
    """
    now, settings = agent.clock(), agent.config.agent
    try:
        with Session(agent.db) as session:
            gone = subscriptions.purge_unconfirmed(
                session, made_before=now - settings.manage_link_ttl
            )
            # No limit looks further back than throttle.KEEP: older attempts only take room.
            throttle.prune(session, now - throttle.KEEP)
            pruned = retention.prune(
                session,
                deliveries_before=now - settings.keep_deliveries,
                events_before=now - settings.keep_events,
            )
            session.commit()
    except AgentError as exc:
        logger.error("purging: %s", exc)
        return
    if gone or pruned.deliveries or pruned.events:
        logger.info(
            "deleted %d unconfirmed subscriptions, %d old deliveries, %d old events",
            gone,
            pruned.deliveries,
            pruned.events,
        )


async def dispatch_job(agent: Agent) -> None:
    """Send what is due; a storage error is one log line, and the next run tries again."""
    try:
        await agent.dispatch()
    except AgentError as exc:
        logger.error("dispatching: %s", exc)


def retry_after(
    failures: int,
    every: timedelta,
    *,
    first: timedelta = timedelta(seconds=30),
    cap: timedelta = timedelta(hours=1),
) -> timedelta | None:
    """How soon to try a source again after ``failures`` failed polls in a row.

    The delay starts at ``first`` and doubles with each failure, up to ``cap``.
    ``None`` means the regular interval comes sooner than any retry would.
    """
    delay = min(first * 2 ** (failures - 1), cap)
    return delay if delay < every else None


class Poller:
    """Polls one source on its interval, and sooner, with backoff, after a failure.

    A lock keeps a retry and the regular run of the same source from overlapping.
    """

    def __init__(
        self, agent: Agent, scheduler: AsyncIOScheduler, name: str, every: timedelta
    ) -> None:
        self.agent, self.scheduler, self.name, self.every = agent, scheduler, name, every
        self.failures = 0
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        """Poll once; on failure, schedule a sooner retry, with jitter."""
        async with self._lock:
            try:
                ok = (await self.agent.poll(self.name)).ok
            except AgentError as exc:  # the database, not the source: try again soon
                logger.error("polling %s: %s", self.name, exc)
                ok = False
        self.failures = 0 if ok else self.failures + 1
        settings = self.agent.config.agent
        delay = (
            retry_after(
                self.failures, self.every, first=settings.retry_first, cap=settings.retry_cap
            )
            if self.failures
            else None
        )
        if delay is not None:
            # Jitter, so sources that failed together do not retry together.
            when = self.agent.clock() + delay * random.uniform(0.5, 1.0)
            self.scheduler.add_job(
                stops_quietly(self.run),
                "date",
                run_date=when,
                id=f"retry:{self.name}",
                replace_existing=True,
            )


def _stop_on_signals(server: uvicorn.Server) -> None:
    # uvicorn re-raises the signal that stopped it once it has shut down, to the
    # handler it found. With this one there, a stopped service exits 0 instead of
    # dying by the signal, and a signal before uvicorn starts still stops it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: setattr(server, "should_exit", True))


def stops_quietly(job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """Let a job cancelled by shutdown end quietly.

    APScheduler logs any exception a job raises, cancellation included, with a
    traceback; a poll that SIGTERM interrupts has done nothing wrong (its
    transaction is rolled back, and the next start polls again).
    """

    @functools.wraps(job)
    async def run() -> None:
        try:
            await job()
        except asyncio.CancelledError:
            logger.debug("%s: stopped by shutdown", getattr(job, "__name__", job))

    return run


def _every(
    scheduler: AsyncIOScheduler,
    func: Callable[..., Any],
    period: timedelta,
    *,
    job_id: str,
) -> None:
    seconds = period.total_seconds()
    scheduler.add_job(
        stops_quietly(func),
        IntervalTrigger(seconds=seconds, jitter=max(int(seconds / 10), 1)),
        id=job_id,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(int(seconds / 2), 1),
        # Run once right away rather than a whole interval after start-up.
        next_run_time=datetime.now(UTC),
    )


async def serve_forever(config: Config, *, local_trial: bool = False) -> None:
    """Serve until SIGINT or SIGTERM; refuse to without a secret signing key.

    ``local_trial`` lets it start anyway, with a warning that its links are
    not safe to hand out.
    """
    require_key(config, local_trial=local_trial)
    async with Agent.open(config) as agent:
        channels = agent.notifiers.values()
        context = ServiceContext(agent.db, agent.links, agent.renderer.strings, agent.clock)
        app = create_app(agent, routes=channel_routes(channels, context))
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=config.server.host, port=config.server.port, log_level="warning"
            )
        )
        scheduler = AsyncIOScheduler(timezone=config.agent.timezone)
        scheduled = schedule(agent, scheduler)
        scheduler.start()
        logger.info(
            "serving on http://%s:%d (health at /health); %d enabled sources scheduled (of %d)",
            config.server.host,
            config.server.port,
            scheduled,
            len(config.sources),
        )
        _stop_on_signals(server)
        listening = start_background(channels, context)
        try:
            # uvicorn handles SIGINT and SIGTERM and returns from serve().
            await server.serve()
        finally:
            scheduler.shutdown(wait=False)
            await stop_background(listening)
