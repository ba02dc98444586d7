"""The jobs every working process runs: polls, dispatch and purge, on APScheduler 3.

One ``AsyncIOScheduler`` (memory job store rebuilt from the configuration at
start) runs one job per enabled source on its own interval, right after
start-up, the dispatcher every ``agent.dispatch_every`` and the purge every
``agent.purge_every``. Jobs never overlap (``max_instances=1``) and missed
runs collapse into one (``coalesce``). All state lives in the database, so
the scheduler holds nothing worth keeping, and any number of processes may
run these jobs over one database: a lease (``agent.leases``) lets one of them
poll each source per interval and one purge. A source an admin disables from
the console keeps its job: each run reads the flag and returns without
fetching (``agent.pipeline``), so enabling it again needs no restart.

Every job is a plain ``async def`` function or bound method: APScheduler 3's
asyncio executor awaits only what ``inspect.iscoroutinefunction`` recognises,
and runs anything else (such as an object with an async ``__call__``) in a
thread, throwing its coroutine away unawaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import Session

from agent import leases, retention, subscriptions, throttle
from agent.errors import AgentError
from agent.service import Agent

logger = logging.getLogger(__name__)


def schedule(
    agent: Agent,
    scheduler: AsyncIOScheduler,
    *,
    owner: str | None = None,
    dispatch: Callable[[], Awaitable[None]] | None = None,
    queued: Callable[[], None] | None = None,
) -> int:
    """Add a poll job per enabled source, the dispatch and purge jobs; return the sources scheduled.

    ``owner`` names this process's leases (``agent.leases``), so that of all
    the processes sharing the database one polls each source per interval and
    one purges. ``dispatch`` replaces the plain dispatch run, and ``queued`` is
    called after a poll that queued alerts (``agent.worker`` wakes its dispatcher).
    """
    owner = owner or worker_name()
    pollers = [
        Poller(agent, scheduler, name, source.every, owner=owner, queued=queued)
        for name, source in agent.config.sources.items()
        if source.enabled
    ]
    for poller in pollers:
        _every(scheduler, poller.run, poller.every, job_id=f"poll:{poller.name}")
    settings = agent.config.agent
    _every(
        scheduler,
        dispatch or functools.partial(dispatch_job, agent),
        settings.dispatch_every,
        job_id="dispatch",
    )
    purge = functools.partial(_leased_purge, agent, owner)
    _every(scheduler, purge, settings.purge_every, job_id="purge")
    return len(pollers)


def worker_name() -> str:
    """This process's name in the leases it holds: host, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


async def _leased_purge(agent: Agent, owner: str) -> None:
    # One worker purges per interval; the others find the lease taken.
    every = agent.config.agent.purge_every
    if await _take(agent, "purge", owner=owner, hold=every, early=every / 5):
        await purge_job(agent)


async def _take(agent: Agent, name: str, *, owner: str, hold: timedelta, early: timedelta) -> bool:
    try:
        with Session(agent.db) as session:
            got = leases.take(session, name, owner=owner, now=agent.clock(), hold=hold, early=early)
            session.commit()
    except AgentError as exc:
        logger.error("taking the lease on %s: %s", name, exc)
        return False
    return got


@contextlib.asynccontextmanager
async def _renewing(agent: Agent, name: str, owner: str) -> AsyncIterator[None]:
    # Renews the lease while the work inside runs, so that it can be short.
    async def renew() -> None:
        while True:
            await asyncio.sleep(POLL_HOLD.total_seconds() / 3)
            await _take(agent, name, owner=owner, hold=POLL_HOLD, early=timedelta(0))

    task = asyncio.create_task(renew())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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


#: A poll in progress holds its source's lease this long, renewed every third
#: of it while the poll runs: a worker that dies mid-poll hands the source to
#: another within this time, however long a poll may take.
POLL_HOLD = timedelta(seconds=30)


class Poller:
    """Polls one source on its interval, and sooner, with backoff, after a failure.

    Every process sharing the database runs a poller per source; the source's
    lease (``poll:<name>``) lets one of them poll it per interval. A lock keeps
    a retry and the regular run of the same source in one process from overlapping.
    """

    def __init__(
        self,
        agent: Agent,
        scheduler: AsyncIOScheduler,
        name: str,
        every: timedelta,
        *,
        owner: str | None = None,
        queued: Callable[[], None] | None = None,
    ) -> None:
        self.agent, self.scheduler, self.name, self.every = agent, scheduler, name, every
        self.owner, self.queued = owner or worker_name(), queued
        self.failures = 0
        self._lock = asyncio.Lock()

    @property
    def lease(self) -> str:
        """The name of this source's lease."""
        return f"poll:{self.name}"

    async def run(self) -> None:
        """Poll once if no other process does this interval; on failure, retry sooner."""
        async with self._lock:
            started = self.agent.clock()
            # A timer firing a little early (the jitter) may still take its turn.
            taken = _take(
                self.agent, self.lease, owner=self.owner, hold=POLL_HOLD, early=self.every / 5
            )
            if not await taken:
                logger.debug("%s: polled by another worker this interval", self.name)
                return
            try:
                async with _renewing(self.agent, self.lease, self.owner):
                    result = await self.agent.poll(self.name)
                ok = result.ok
            except AgentError as exc:  # the database, not the source: try again soon
                logger.error("polling %s: %s", self.name, exc)
                ok, result = False, None
            except asyncio.CancelledError:  # stopped mid-poll: the next worker polls at once
                self._release(self.agent.clock())
                raise
            if result is not None and result.deliveries and self.queued is not None:
                self.queued()
            self.failures = 0 if ok else self.failures + 1
            retry = self._retry_at()
            self._release(retry or started + self.every)
        if retry is not None:
            self.scheduler.add_job(
                stops_quietly(self.run),
                "date",
                run_date=retry,
                id=f"retry:{self.name}",
                replace_existing=True,
            )

    def _retry_at(self) -> datetime | None:
        settings = self.agent.config.agent
        if not self.failures:
            return None
        delay = retry_after(
            self.failures, self.every, first=settings.retry_first, cap=settings.retry_cap
        )
        if delay is None:
            return None
        # Jitter, so sources that failed together do not retry together.
        return self.agent.clock() + delay * random.uniform(0.5, 1.0)

    def _release(self, until: datetime) -> None:
        # Free for everyone from ``until``: the next interval, or the retry.
        try:
            with Session(self.agent.db) as session:
                leases.release(session, self.lease, owner=self.owner, until=until)
                session.commit()
        except AgentError as exc:  # the lease then runs out by itself
            logger.error("releasing the lease on %s: %s", self.name, exc)


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
        # Jitter, up to a tenth of the interval, so jobs due together spread out.
        IntervalTrigger(seconds=seconds, jitter=seconds / 10),
        id=job_id,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(int(seconds / 2), 1),
        # Run once right away rather than a whole interval after start-up.
        next_run_time=datetime.now(UTC),
    )
