"""The composition root: builds every part from the configuration and wires them.

``Agent.open(config)`` enters the shared HTTP client and every configured
channel once, and hands them to the stages. Everything environmental (the
clock, the HTTP client) can be passed in, so tests use real parts without
patching anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Self
from urllib.parse import urlsplit

import httpx
from sqlalchemy.engine import Engine

from agent import db as database
from agent import preview
from agent.admin_alerts import AdminAlerts
from agent.config import Config
from agent.dispatch import DispatchResult, dispatch
from agent.flood import FloodCap
from agent.keys import links_for
from agent.links import Links
from agent.matching import Matcher
from agent.pipeline import PollResult, describe_failure, poll
from agent.rendering import Renderer
from notifiers import Notifier

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The real clock, aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class SourceCheck:
    """The health of one source as ``sources check`` saw it."""

    name: str
    ok: bool
    items: int
    detail: str


@dataclass
class Agent:
    """A running agent: configuration, database, HTTP client, channels, matcher."""

    config: Config
    db: Engine
    http: httpx.AsyncClient
    notifiers: dict[str, Notifier]
    renderer: Renderer
    links: Links
    matcher: Matcher
    clock: Clock

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        config: Config,
        *,
        clock: Clock = utcnow,
        http: httpx.AsyncClient | None = None,
        with_channels: bool = True,
    ) -> AsyncIterator[Self]:
        """Open the database, the HTTP client and the channels; close them on exit.

        The templates are tried first: a broken override stops start-up here,
        naming its file and line, rather than failing a send later.
        """
        links = links_for(config, clock=clock)
        renderer = Renderer(
            config.path(config.agent.templates_dir),
            site_name=config.agent.site_name,
            mail_domain=urlsplit(links.public_url).hostname or "smart-agent.invalid",
            timezone=config.agent.timezone,
        )
        preview.check(renderer)
        engine = database.connect(config.database_url)
        database.init(engine)
        async with contextlib.AsyncExitStack() as stack:
            if http is None:
                http = await stack.enter_async_context(http_client(config))
            notifiers: dict[str, Notifier] = {}
            if with_channels:
                for name, notifier in config.notifiers.enabled().items():
                    notifiers[name] = await stack.enter_async_context(notifier)
            try:
                yield cls(config, engine, http, notifiers, renderer, links, Matcher(), clock)
            finally:
                engine.dispose()

    async def poll(self, name: str) -> PollResult:
        """Poll one configured source."""
        return await poll(
            name,
            self.config.sources[name],
            db=self.db,
            http=self.http,
            matcher=self.matcher,
            settings=self.config.agent,
            channels=self.config.notifiers.enabled(),
            now=self.clock(),
            admin=AdminAlerts(
                self.config.agent.admin_alerts, self.notifiers, self.renderer, self.links.public_url
            ),
        )

    async def poll_all(self) -> list[PollResult]:
        """Poll every enabled source, one after another."""
        return [
            await self.poll(name) for name, source in self.config.sources.items() if source.enabled
        ]

    async def dispatch(self) -> DispatchResult:
        """Send what is due."""
        return await dispatch(
            db=self.db,
            notifiers=self.notifiers,
            renderer=self.renderer,
            links=self.links,
            clock=self.clock,
            max_attempts=self.config.agent.max_attempts,
            flood=self.flood,
            lease=self.config.agent.delivery_lease,
            concurrency=self.config.agent.send_concurrency,
        )

    @property
    def flood(self) -> FloodCap | None:
        """The hourly cap on immediate alerts, unless turned off (``hourly_cap = 0``)."""
        settings = self.config.agent
        if not settings.hourly_cap:
            return None
        return FloodCap(settings.hourly_cap, settings.timezone, settings.digest_hour)

    async def check_sources(self) -> list[SourceCheck]:
        """Fetch every enabled source and report its health; store and send nothing."""
        checks = []
        for name, source in self.config.sources.items():
            if not source.enabled:
                continue
            try:
                batch = await source.poll(self.http, None)
            except Exception as exc:  # as in ``pipeline.poll``: one source's crash is its failure
                checks.append(SourceCheck(name, False, 0, describe_failure(exc)))
                continue
            detail = f"ok; {batch.skipped} malformed records skipped" if batch.skipped else "ok"
            checks.append(SourceCheck(name, True, len(batch.items), detail))
        return checks


def http_client(config: Config) -> httpx.AsyncClient:
    """The HTTP client every watcher shares (``sources record`` listens in on it)."""
    return httpx.AsyncClient(
        headers={"User-Agent": config.agent.user_agent},
        timeout=httpx.Timeout(30.0),
        follow_redirects=True,
    )
