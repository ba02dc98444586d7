"""``worker`` and ``serve``: a process's share of the work, with or without the web app.

``Work`` is everything a process does besides serving pages: the scheduled
polls, dispatch and purge (``agent.scheduler``), the channels' listeners
(Telegram's updates) and, on PostgreSQL, LISTEN for queued alerts
(``agent.wakeup``). Any number of processes may do it over one database:

- each source is polled by one of them per interval (its lease);
- deliveries are claimed group by group with ``FOR UPDATE SKIP LOCKED``;
- the channels' listeners run in one process at a time (a lease it renews;
  when that process dies another takes over once the lease runs out);
- a poll that queued alerts wakes its own dispatcher at once, and the NOTIFY
  in its transaction wakes every other worker's.

``smart-agent worker`` runs ``Work`` until SIGINT or SIGTERM; ``serve`` runs it
beside the web app, which itself keeps no state and runs in any number of
processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel import Session

from agent import leases, wakeup
from agent.config import Config
from agent.errors import AgentError
from agent.keys import require_key
from agent.scheduler import dispatch_job, schedule, worker_name
from agent.service import Agent
from agent.web import create_app
from notifiers.base import (
    Background,
    ServiceContext,
    channel_routes,
    start_background,
    stop_background,
)

logger = logging.getLogger(__name__)

#: The channels' listeners' lease: held this long, renewed every third of it.
LISTENERS = "channels:listen"
LISTENERS_HOLD = timedelta(seconds=30)


class Dispatcher:
    """Runs dispatch when its job fires or when woken; never two runs at once in a process.

    A wake-up during a run makes that run go round once more, so alerts queued
    while it was sending are not left for the next interval.
    """

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._running = False
        self._again = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Dispatch until nothing new was queued meanwhile."""
        if self._running:
            self._again = True
            return
        self._running, self._again = True, True
        try:
            while self._again:
                self._again = False
                await dispatch_job(self.agent)
        finally:
            self._running = False

    def wake(self) -> None:
        """Dispatch now (in the background), or once more after the run in progress."""
        if self._running:
            self._again = True
            return
        task = asyncio.create_task(self.run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Cancel a run started by a wake-up and wait for it."""
        await _cancel(self._tasks)


class Work:
    """A process's share of the work, started on entry and stopped on exit."""

    def __init__(self, agent: Agent, context: ServiceContext, *, owner: str | None = None) -> None:
        self.agent, self.context = agent, context
        self.owner = owner or worker_name()
        self.dispatcher = Dispatcher(agent)
        self.scheduler = AsyncIOScheduler(timezone=agent.config.agent.timezone)
        self.scheduled = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        self.scheduled = schedule(
            self.agent,
            self.scheduler,
            owner=self.owner,
            dispatch=self.dispatcher.run,
            queued=self.dispatcher.wake,
        )
        self.scheduler.start()
        self._spawn(self._keep_listeners())
        if wakeup.can_listen(self.agent.db):
            self._spawn(wakeup.listen(self.agent.db, self.dispatcher.wake))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.scheduler.shutdown(wait=False)
        await _cancel(self._tasks)
        await self.dispatcher.stop()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keep_listeners(self) -> None:
        # Telegram hands each update to one getUpdates caller: two would fight.
        channels = [c for c in self.agent.notifiers.values() if isinstance(c, Background)]
        if not channels:
            return
        running: list[asyncio.Task[None]] = []
        try:
            while True:
                mine = await self._hold(LISTENERS)
                if mine and not running:
                    logger.info("this worker (%s) runs the channels' listeners", self.owner)
                    running = start_background(channels, self.context)
                elif not mine and running:
                    logger.warning("another worker took over the channels' listeners")
                    await stop_background(running)
                    running = []
                await asyncio.sleep(LISTENERS_HOLD.total_seconds() / 3)
        finally:
            await stop_background(running)
            if running:
                await asyncio.shield(self._let_go(LISTENERS))

    async def _hold(self, name: str) -> bool:
        try:
            with Session(self.agent.db) as session:
                mine = leases.take(
                    session, name, owner=self.owner, now=self.agent.clock(), hold=LISTENERS_HOLD
                )
                session.commit()
        except AgentError as exc:
            logger.error("renewing the lease on %s: %s", name, exc)
            return False
        return mine

    async def _let_go(self, name: str) -> None:
        # So that another worker takes over at once instead of when the lease runs out.
        with contextlib.suppress(AgentError), Session(self.agent.db) as session:
            leases.release(session, name, owner=self.owner, until=self.agent.clock())
            session.commit()


async def _cancel(tasks: set[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def work_forever(config: Config, *, local_trial: bool = False) -> None:
    """Poll and send until SIGINT or SIGTERM, sharing the database with other workers."""
    require_key(config, local_trial=local_trial)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Agent.open(config) as agent, Work(agent, _context(agent)) as work:
        logger.info(
            "worker %s: %d enabled sources scheduled (of %d)",
            work.owner,
            work.scheduled,
            len(config.sources),
        )
        await stop.wait()
    logger.info("worker %s stopped", work.owner)


async def serve_forever(config: Config, *, local_trial: bool = False) -> None:
    """Serve the web app and do a worker's share until SIGINT or SIGTERM.

    Refuses to start without a secret signing key, unless ``local_trial``
    (with a warning that its links are not safe to hand out).
    """
    require_key(config, local_trial=local_trial)
    async with Agent.open(config) as agent:
        context = _context(agent)
        app = create_app(agent, routes=channel_routes(agent.notifiers.values(), context))
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=config.server.host, port=config.server.port, log_level="warning"
            )
        )
        _stop_on_signals(server)
        async with Work(agent, context) as work:
            logger.info(
                "serving on http://%s:%d (health at /health); %d enabled sources scheduled (of %d)",
                config.server.host,
                config.server.port,
                work.scheduled,
                len(config.sources),
            )
            # uvicorn handles SIGINT and SIGTERM and returns from serve().
            await server.serve()


def _context(agent: Agent) -> ServiceContext:
    return ServiceContext(agent.db, agent.links, agent.renderer.strings, agent.clock)


def _stop_on_signals(server: uvicorn.Server) -> None:
    # uvicorn re-raises the signal that stopped it once it has shut down, to the
    # handler it found. With this one there, a stopped service exits 0 instead of
    # dying by the signal, and a signal before uvicorn starts still stops it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: setattr(server, "should_exit", True))
