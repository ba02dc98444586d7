"""What every part of the web app shares: the running agent, the pages, the visitor."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse

from agent.accounts import User
from agent.links import Links
from agent.rendering import Renderer
from agent.web.pages import Pages, flash, take_flash

__all__ = ["Site", "flash", "redirect", "take_flash"]

if TYPE_CHECKING:
    from agent.service import Agent

logger = logging.getLogger(__name__)


@dataclass
class Site:
    """The running agent and the page renderer, handed to every group of routes."""

    agent: Agent
    pages: Pages
    user_of: Callable[[Request], User | None]
    #: Work started from a page (``poll now``) that outlives its request.
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def db(self) -> Engine:
        """The database."""
        return self.agent.db

    @property
    def links(self) -> Links:
        """Builds and checks signed links."""
        return self.agent.links

    @property
    def renderer(self) -> Renderer:
        """Renders messages and feeds (the channels' templates)."""
        return self.agent.renderer

    def now(self) -> datetime:
        """The agent's clock."""
        return self.agent.clock()

    def session(self) -> Session:
        """A database session whose objects stay readable after commit."""
        return Session(self.db, expire_on_commit=False)

    def spawn(self, work: Coroutine[Any, Any, Any], *, name: str) -> None:
        """Run ``work`` in the background; a failure is logged, never lost silently."""
        task = asyncio.create_task(work, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    async def stop(self) -> None:
        """Cancel the background work still running (the server is stopping) and wait for it."""
        running = list(self.tasks)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("%s failed: %r", task.get_name(), error)


def redirect(url: str) -> RedirectResponse:
    """See other: after a POST, the browser GETs ``url``."""
    return RedirectResponse(url, status_code=303)
