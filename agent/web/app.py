"""The web app: every page, the JSON API, feeds, health; one Starlette app.

``create_app(agent)`` builds it over a running ``Agent`` (database, clock,
links, renderer, channels). Each area of the site is a module with a
``routes(site)`` function:

* ``agent.web.public`` -- browse and search items, an item's history, the
  sources' status page;
* ``agent.web.subscribe`` -- subscribe without an account (double opt-in,
  Telegram deep link), the live rule preview;
* ``agent.web.manage`` -- a subscriber's pages behind signed links: manage,
  one-click unsubscribe;
* ``agent.web.orgs`` -- organisations, their members and shared subscriptions;
* ``agent.web.login`` -- logging in and out (admins and organisations' members);
* ``agent.web.admin`` -- the admin console: dashboard with charts, sources;
* ``agent.web.admin_subscriptions`` -- the noise each rule makes, editing a rule
  with a preview of what it would add and remove;
* ``agent.web.admin_deliveries`` -- the delivery ledger: why, retry, replay;
* ``agent.web.admin_templates`` -- every channel's messages in every language;
* ``agent.web.api`` -- the JSON API and its OpenAPI description;
* ``agent.web.feeds`` -- each subscription's Atom, RSS and iCalendar feeds;

plus ``GET /health`` (every source's health and the outbox as JSON; 200 only
when all is well, 503 while starting or degraded) and ``GET /health/live``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from agent.health import ServiceStatus
from agent.health import check as check_health
from agent.web import (
    admin,
    admin_deliveries,
    admin_subscriptions,
    admin_templates,
    api,
    login,
    manage,
    orgs,
    public,
    subscribe,
)
from agent.web.feeds import feed_routes
from agent.web.pages import Pages
from agent.web.security import BodyLimit, SecurityHeaders, session_middleware, user_of
from agent.web.site import Site

if TYPE_CHECKING:
    from agent.service import Agent

#: The site's stylesheet and its one script (htmx), served under ``/static``.
STATIC = Path(__file__).resolve().parent / "static"

#: Each area's routes, in the order they are matched.
AREAS: tuple[Callable[[Site], list[BaseRoute]], ...] = (
    public.routes,
    subscribe.routes,
    manage.routes,
    orgs.routes,
    login.routes,
    admin.routes,
    admin_subscriptions.routes,
    admin_deliveries.routes,
    admin_templates.routes,
    api.routes,
)


def create_app(agent: Agent, *, routes: Sequence[BaseRoute] = ()) -> Starlette:
    """Build the ASGI app over a running agent; ``routes`` are the channels' (webhooks)."""
    settings = agent.config.agent
    find_user = user_of(agent.db)
    pages = Pages(
        agent.config.path(settings.templates_dir),
        site_name=settings.site_name,
        timezone=settings.timezone,
        user_of=find_user,
    )
    site = Site(agent, pages, find_user)

    async def health(request: Request) -> Response:
        report = check_health(agent.db, agent.config.sources, now=agent.clock())
        code = 200 if report.status is ServiceStatus.OK else 503
        return JSONResponse(report.to_dict(), status_code=code)

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "Internal error"
        # The API (mounted at /api) answers its own errors as JSON.
        return pages.render(request, "error.html", {"code": code, "detail": detail}, status=code)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await site.stop()

    return Starlette(
        routes=[
            *feed_routes(agent.db, agent.renderer, agent.links, clock=agent.clock),
            Route("/health", health),
            Route("/health/live", live),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            *[route for area in AREAS for route in area(site)],
            *routes,
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(BodyLimit),
            session_middleware(
                agent.links.subkey("session"), https=agent.links.public_url.startswith("https:")
            ),
        ],
        exception_handlers={HTTPException: error},
        lifespan=lifespan,
    )
