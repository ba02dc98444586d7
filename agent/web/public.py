"""The public pages: home, browse and search items, an item's history, the sources' status.

* ``GET /`` -- what the service does, a search box, the newest items;
* ``GET /items`` -- search with the same filters as a subscription rule
  (``agent.web.forms``), 20 a page; "alert me about this search" hands the
  search to ``/subscribe`` as it is;
* ``GET /items/<id>`` -- every field of an item and the history of its changes;
* ``GET /status`` -- each source's status in words, so "no alerts" can be told
  apart from "a source is broken".
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent import health
from agent.rules import Node
from agent.web.forms import read_rule
from agent.web.pages import language_of
from agent.web.public_history import Local, find_item, history, item_fields, similar_query
from agent.web.public_search import PAGE_SIZE, SEARCH_LIMIT, Results, page_number, search
from agent.web.public_status import Board, board
from agent.web.site import Site

#: Items the home page shows.
HOME_SIZE = 8


def routes(site: Site) -> list[BaseRoute]:
    """This area's routes."""

    async def home(request: Request) -> Response:
        # The newest few need no more read than they are (see ``public_search._recent``).
        results = await run_in_threadpool(_search, site, None, 1, HOME_SIZE, HOME_SIZE)
        local = _local(site, request)
        values = {"results": results, "board": _board(site), **_formats(local)}
        return site.pages.render(request, "public/home.html", values)

    async def items(request: Request) -> Response:
        form = read_rule(request.query_params, require=False)
        page = page_number(request.query_params.get("page"))
        # A rule with errors lists nothing: its fields show where the errors are.
        results = None if form.errors else await run_in_threadpool(_search, site, form.node, page)
        query = form.query_string() if form.given and not form.errors else ""
        values = {
            "form": form,
            "results": results,
            "alert_url": f"/subscribe?{query}" if query else "/subscribe",
            "search_limit": SEARCH_LIMIT,
            **_formats(_local(site, request)),
        }
        return site.pages.render(request, "public/items.html", values)

    async def item(request: Request) -> Response:
        local = _local(site, request)
        with site.session() as session:
            row = find_item(session, request.path_params["id"])
            if row is None:
                raise HTTPException(404, _not_found(site, request))
            steps = history(session, row, local)
        shown = row.to_item()
        values = {
            "row": row,
            "item": shown,
            "fields": item_fields(shown, local),
            "days_left": local.days_left(shown.deadline, site.now()) if shown.deadline else "",
            "steps": steps,
            "similar_url": f"/subscribe?{similar_query(shown.kind.value, shown.publisher)}",
            **_formats(local),
        }
        return site.pages.render(request, "public/item.html", values)

    async def status(request: Request) -> Response:
        values = {"board": _board(site), "now": site.now()}
        return site.pages.render(request, "public/status.html", values)

    return [
        Route("/", home),
        Route("/items", items),
        Route("/items/{id:int}", item),
        Route("/status", status),
    ]


def _search(
    site: Site, node: Node | None, page: int, size: int = PAGE_SIZE, limit: int = SEARCH_LIMIT
) -> Results:
    """Run a search in its own session (in a worker thread: it may take a while)."""
    with site.session() as session:
        return search(session, node, site.now(), page=page, size=size, limit=limit)


def _board(site: Site) -> Board:
    now = site.now()
    report = health.check(site.db, site.agent.config.sources, now=now)
    with site.session() as session:
        return board(session, report, now)


def _local(site: Site, request: Request) -> Local:
    language = language_of(request)
    extra = site.pages.strings[language]["public"]["field"]
    return Local(language, site.pages.messages[language], extra, site.pages.zone)


def _formats(local: Local) -> dict[str, Any]:
    """What the pages' templates format items with: field labels and instants."""
    return {"label": local.label, "instant": local.instant}


def _not_found(site: Site, request: Request) -> str:
    return str(site.pages.strings[language_of(request)]["public"]["item_missing"])
