"""The HTTP server: per-subscription feeds, one-click unsubscribe, and health.

* ``GET /feeds/<token>.xml|.rss|.ics`` -- the subscription's Atom, RSS and
  iCalendar feeds, with ETag and Last-Modified (``agent.web_feeds``);
* ``GET|POST /unsubscribe/<signed token>`` -- a page, and RFC 8058 one-click
  (``agent.links``: 404 unless genuine, 410 once expired);
* ``GET /health`` -- every source's health and the outbox, as JSON; 200 when
  all is well, 503 while starting or degraded (``agent.health``);
* ``GET /health/live`` -- 200 whenever the process answers.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from agent import outbox
from agent.health import ServiceStatus
from agent.health import check as check_health
from agent.links import Links, LinkState, Purpose
from agent.links import parse as parse_token
from agent.models import Subscription
from agent.rendering import Renderer
from agent.web_feeds import feed_routes
from watchers import Watcher


def create_app(
    db: Engine,
    renderer: Renderer,
    links: Links,
    *,
    sources: Mapping[str, Watcher],
    clock: Callable[[], datetime],
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """Build the ASGI app over the given database and renderer; ``routes`` are channels'."""

    async def unsubscribe(request: Request) -> Response:
        token = parse_token(request.path_params["token"])
        with Session(db) as session:
            sub = _by_public_id(session, token.public_id) if token is not None else None
            state = links.check(token, sub, Purpose.UNSUBSCRIBE)
            if sub is None or sub.id is None or state is not LinkState.VALID:
                return _refused(renderer, state, sub)
            name, language = sub.name, sub.language
            if request.method == "POST":
                sub.active = False
                sub.updated_at = clock()
                session.add(sub)
                outbox.cancel(session, sub.id, reason="unsubscribed")
                session.commit()
        texts = renderer.strings(language)
        if request.method == "POST":
            return HTMLResponse(_page(language, texts["unsubscribed"], name))
        form = (
            f'<form method="post"><p>{html.escape(name)}</p>'
            f'<button type="submit">{html.escape(texts["unsubscribe"])}</button></form>'
        )
        return HTMLResponse(_page(language, texts["unsubscribe"], form, raw=True))

    async def health(request: Request) -> Response:
        report = check_health(db, sources, now=clock())
        code = 200 if report.status is ServiceStatus.OK else 503
        return JSONResponse(report.to_dict(), status_code=code)

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    return Starlette(
        routes=[
            *feed_routes(db, renderer, links, clock=clock),
            Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
            Route("/health", health),
            Route("/health/live", live),
            *routes,
        ]
    )


def _by_public_id(session: Session, public_id: str) -> Subscription | None:
    return session.exec(select(Subscription).where(Subscription.public_id == public_id)).first()


def _refused(renderer: Renderer, state: LinkState, sub: Subscription | None) -> Response:
    """A genuine but expired link says so (410); anything else is just not found (404)."""
    if state is LinkState.EXPIRED and sub is not None:
        texts = renderer.strings(sub.language)
        page = _page(sub.language, texts["link_expired"], texts["link_expired_hint"])
        return HTMLResponse(page, 410)
    return HTMLResponse(_page("en", "Invalid link", "This link is not valid."), 404)


def _page(language: str, title: str, body: str, *, raw: bool = False) -> str:
    direction = "ltr" if language == "en" else "rtl"
    content = body if raw else f"<p>{html.escape(body)}</p>"
    return (
        f'<!doctype html><html lang="{language}" dir="{direction}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{content}</body></html>"
    )
