"""Public endpoints: publications (filtered as rules are), one with its history, the sources.

A list is the browse page's search (``agent.web.public_search``): filtered by
the same fields as a rule (``query``, ``kinds``, ``amount_min``...; read with
``read_rule``), each item judged as a new publication now (so
``min_days_left`` counts from today), newest first, and bounded: only the
``SEARCH_LIMIT`` most recently seen items are searched, and a list that
reached that limit says so (``limited``).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from agent.health import check as check_health
from agent.models import EventType, Item, StoredEvent, StoredItem
from agent.rules import Node, RuleSpec
from agent.web.api_core import ApiError, answer, form_errors, invalid, page_info, read_query
from agent.web.api_endpoint import Endpoint
from agent.web.api_schemas import (
    HistoryEntry,
    ItemDetail,
    ItemList,
    ItemOut,
    PageQuery,
    SourceList,
    SourceOut,
)
from agent.web.forms import read_rule
from agent.web.public_search import Results, search
from agent.web.site import Site

#: An item's history is cut at this many events (the newest are kept).
HISTORY_LIMIT = 500


def endpoints(site: Site) -> list[Endpoint]:
    """The public endpoints."""

    async def list_items(request: Request) -> Response:
        paging = read_query(request, PageQuery)
        form = read_rule(request.query_params, require=False)
        if form.errors:
            raise invalid(form_errors(form))
        found = await run_in_threadpool(_search, site, form.node, paging)
        # Past the last page the browse page shows the last one; the API shows none.
        rows = found.rows if found.page == paging.page else []
        info = page_info(
            request,
            paging,
            total=found.total,
            more=paging.page < found.pages,
            limited=found.bounded,
        )
        items = [item_out(row.id, row.item, row.first_seen_at, site) for row in rows]
        return answer(ItemList(items=items, page=info))

    async def one_item(request: Request) -> Response:
        with site.session() as session:
            row = session.get(StoredItem, request.path_params["id"])
            if row is None:
                raise ApiError(404, "no such item")
            history = _history(session, row)
        shown = item_out(row.id or 0, row.to_item(), row.first_seen_at, site)
        return answer(ItemDetail(**shown.model_dump(), history=history))

    async def sources(request: Request) -> Response:
        health = check_health(site.db, site.agent.config.sources, now=site.now())
        found = [
            SourceOut.model_validate(
                {key: value for key, value in s.to_dict().items() if key != "last_error"}
            )
            for s in health.sources
        ]
        return answer(SourceList(status=health.status, sources=found))

    tag = "public"
    return [
        Endpoint(
            "GET",
            "/items",
            "listItems",
            "List publications, newest first, filtered as a rule filters them",
            tag,
            list_items,
            query=(RuleSpec, PageQuery),
            returns=ItemList,
            description=(
                "The filters are a rule's fields (list fields may repeat or be comma-separated). "
                "A rule error answers 422 naming the field, and the position in `query`."
            ),
        ),
        Endpoint(
            "GET",
            "/items/{id:int}",
            "getItem",
            "One publication with its history of changes",
            tag,
            one_item,
            returns=ItemDetail,
            about={"id": "The publication's id (from a list)."},
        ),
        Endpoint(
            "GET",
            "/sources",
            "listSources",
            "Every configured source's health",
            tag,
            sources,
            returns=SourceList,
        ),
    ]


def item_out(item_id: int, item: Item, first_seen_at: datetime, site: Site) -> ItemOut:
    """A stored item as the API shows it (without the source's raw record)."""
    return ItemOut(
        id=item_id,
        web_url=f"{site.links.public_url}/items/{item_id}",
        first_seen_at=first_seen_at,
        **item.model_dump(exclude={"raw"}),
    )


def _search(site: Site, node: Node | None, paging: PageQuery) -> Results:
    """The browse page's search (in a worker thread: it may take a while)."""
    with site.session() as session:
        return search(session, node, site.now(), page=paging.page, size=paging.per_page)


def _history(session: Session, row: StoredItem) -> list[HistoryEntry]:
    """The item's events, oldest first (the newest ``HISTORY_LIMIT``)."""
    events = session.exec(
        select(StoredEvent)
        .where(StoredEvent.item_id == row.id)
        .order_by(col(StoredEvent.created_at).desc(), col(StoredEvent.id).desc())
        .limit(HISTORY_LIMIT)
    ).all()
    return [
        HistoryEntry(
            id=event.id or 0,
            type=EventType(event.type),
            at=event.created_at,
            changes=event.to_event().changes,
        )
        for event in reversed(events)
    ]
