"""A Budget Key search API (``/search/<doc_type>``) serving ``tests.fakes.budgetkey_docs``.

The server behaves as apies does (``dataspot/apies apies/blueprint.py``, ``controllers.py``,
``query.py``, as ``OpenBudget/budgetkey-api modules/search.py`` mounts it): ``q`` keeps
documents whose title, description or publisher hold every term; ``filter`` is evaluated
by ``tests.fakes.budgetkey_filters``; ``order`` sorts by one field (``-`` descending, a
missing value last), else by ``score``; any exception is HTTP 200 ``{"error": "..."}``; and
a search Elasticsearch refuses — ``offset + size`` past the 10,000 window, a ``__eq`` —
comes back as an empty page that counts 0 (apies counts a response without ``hits`` as 0).
``app.state.calls`` records every query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import NOW
from tests.fakes import budgetkey_filters as filters
from tests.fakes.budgetkey_docs import (
    INDEXED_AT,
    all_docs,
    change_docs,
    criteria_doc,
    criteria_rows,
    indexed,
    tender_doc,
)
from tests.fakes.jsonapi import Failure, failure, json_response

#: Elasticsearch's default ``index.max_result_window``.
WINDOW = 10_000

# The documents' builders, for tests and other fakes that need Budget Key's data.
__all__ = [
    "INDEXED_AT",
    "WINDOW",
    "all_docs",
    "build_app",
    "change_docs",
    "criteria_doc",
    "criteria_rows",
    "indexed",
    "tender_doc",
]


def build_app(
    docs: dict[str, list[dict[str, Any]]] | None = None,
    *,
    now: datetime = NOW,
    fail: Failure | None = None,
    fail_at_offset: int = 0,
    total: int | None = None,
    ignore_size_above: int | None = None,
    answer: Any = None,
    refuse_from_offset: int | None = None,
) -> Starlette:
    """Build the search server.

    ``now`` is the clock of date maths in filters; ``fail`` breaks pages from
    ``fail_at_offset`` on; ``total`` overrides ``total_overall``; ``ignore_size_above`` caps
    ``size`` as a server limit would; ``answer``, when given, is served as the JSON of every
    search instead; from ``refuse_from_offset`` on, every search fails inside Elasticsearch.
    """
    served = all_docs() if docs is None else docs
    calls: list[dict[str, str]] = []

    async def search(request: Request) -> Response:
        query = dict(request.query_params)
        calls.append(query)
        if answer is not None:
            return json_response(answer)
        doc_type = request.path_params["doc_type"]
        offset = int(query.get("offset", 0)) if query.get("offset", "0").isdigit() else 0
        try:
            refused = refuse_from_offset is not None and offset >= refuse_from_offset
            payload = _search(served, doc_type, query, now, ignore_size_above, refused)
        except Exception as exc:  # apies search_handler: any exception is {"error": str(e)}
            return json_response({"error": str(exc)})
        if total is not None:
            payload["search_counts"]["_current"]["total_overall"] = total
        if fail and offset >= fail_at_offset:
            return failure(fail, payload)
        return json_response(payload)

    app = Starlette(routes=[Route("/search/{doc_type}", search)])
    app.state.calls = calls
    return app


def _search(
    served: dict[str, list[dict[str, Any]]],
    doc_type: str,
    query: dict[str, str],
    now: datetime,
    cap: int | None,
    refused: bool = False,
) -> dict[str, Any]:
    if doc_type not in served:
        raise ValueError(f"not a real type {doc_type}")  # apies _validate_types
    size, offset = int(query.get("size", 10)), int(query.get("offset", 0))
    size = min(size, cap) if cap else size
    groups = filters.searched(filters.parse(query.get("filter")), doc_type)
    if groups is None:  # apies sends Elasticsearch an empty msearch, which it refuses
        raise ValueError("request body or source parameter is required")
    try:
        if refused:
            raise filters.SearchFailed("refused (a test's failing Elasticsearch)")
        if offset + size > WINDOW:
            raise filters.SearchFailed(f"Result window is too large: {offset + size} > {WINDOW}")
        found = _sorted(_matching(served[doc_type], query, groups, now), query.get("order"))
    except filters.SearchFailed:
        found, offset = [], 0  # msearch reports the failure in place of the hits
    return {
        "search_counts": {
            doc_type: {"total_overall": len(found)},
            "_current": {"total_overall": len(found)},
        },
        "search_results": [
            {"source": doc, "type": doc_type, "score": doc.get("score", 1.0)}
            for doc in found[offset : offset + size]
        ],
    }


def _matching(
    docs: list[dict[str, Any]], query: dict[str, str], groups: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    terms = query.get("q", "").split()

    def keep(doc: dict[str, Any]) -> bool:
        text = " ".join(str(doc.get(f) or "") for f in ("page_title", "description", "publisher"))
        return all(term in text for term in terms) and filters.matches(doc, groups, now)

    return [doc for doc in docs if keep(doc)]


def _sorted(docs: list[dict[str, Any]], order: str | None) -> list[dict[str, Any]]:
    """Sort by one field as Elasticsearch does: a missing value goes last either way."""
    field = (order or "-score").lstrip("-")
    present = [d for d in docs if d.get(field) is not None]
    missing = [d for d in docs if d.get(field) is None]
    present.sort(key=lambda d: d[field], reverse=(order or "-").startswith("-"))
    return present + missing
