"""A CKAN action API (data.gov.il flavour) serving the real 2017 mr.gov.il rows.

Routes, under ``/api/3/action``:

* ``package_show?id=<dataset>`` — the configured dataset, whose resources are an
  XLSX copy (``datastore_active: false``) and then the datastore table; any other
  id is looked up among the recorded demo.ckan.org ``package_show`` files
  (``fixtures/ckan/demo.ckan.org``), else CKAN's 404 ``success: false``.
* ``datastore_search?resource_id=&limit=&offset=&sort=`` — the records with
  ``_id`` 1…n, the ``total``, and a **relative** ``_links.next`` present even on
  the last page, as CKAN 2.x sends it. ``limit`` is capped at ``rows_max``
  silently, as CKAN caps it.

``build_app`` takes the data and the failure knobs, so each test serves what it
needs; ``app.state.calls`` records the query of every ``datastore_search``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import FIXTURES
from tests.fakes.jsonapi import Failure, failure, json_response
from tests.fakes.mrgov import exemptions, office_tenders

#: The recorded demo.ckan.org ``package_show`` answers.
DEMO = FIXTURES / "ckan" / "demo.ckan.org"
#: The resource id reported (third-party) for data.gov.il's tenders table.
TENDERS_RESOURCE = "7038b3e6-a74d-442e-b16b-466c8196124a"
#: A ``metadata_modified`` as CKAN writes it: naive UTC with microseconds.
MODIFIED = "2017-07-10T05:31:14.262184"
ACTION = "/api/3/action"


def real_records() -> list[dict[str, str]]:
    """Return the 11 office tenders and 10 exemptions, as one register."""
    return [*office_tenders(), *exemptions()]


def package(dataset: str, resource_id: str, modified: str = MODIFIED) -> dict[str, Any]:
    """Return a data.gov.il-like ``package_show`` result for ``dataset``."""
    base = f"https://data.gov.il/dataset/{dataset}/resource"
    xlsx = {"id": "0f6a1c52-5c2e-4c1b-9d7e-1b2f6a2c9e11", "name": "דוח מכרזים (אקסל)"}
    table = {"id": resource_id, "name": "דוח מכרזים"}
    return {
        "id": "1a2b3c4d-0000-4000-8000-00000000d6f1",
        "name": dataset,
        "title": "מכרזים",
        "organization": {"name": "mof", "title": "משרד האוצר"},
        "metadata_modified": modified,
        "resources": [
            {**xlsx, "format": "XLSX", "datastore_active": False, "url": f"{base}/x.xlsx"},
            {**table, "format": "CSV", "datastore_active": True, "url": f"{base}/t.csv"},
        ],
    }


def build_app(
    records: list[dict[str, str]] | None = None,
    *,
    dataset: str = "tenders",
    resource_id: str = TENDERS_RESOURCE,
    modified: str = MODIFIED,
    rows_max: int = 32000,
    fail: Failure | None = None,
    fail_at_offset: int = 0,
    success_false: bool = False,
) -> Starlette:
    """Build the CKAN server; ``fail`` breaks ``datastore_search`` from ``fail_at_offset`` on.

    ``success_false`` makes ``datastore_search`` answer ``success: false`` with
    status 200, as some proxies relay CKAN errors.
    """
    rows = real_records() if records is None else records
    table = [{"_id": n, **row} for n, row in enumerate(rows, start=1)]
    calls: list[dict[str, str]] = []

    async def package_show(request: Request) -> Response:
        name = request.query_params.get("id", "")
        if name == dataset:
            return json_response(_envelope("package_show", package(name, resource_id, modified)))
        recorded = DEMO / f"package_show_{name}.json"
        if recorded.is_file():
            return Response(recorded.read_bytes(), media_type="application/json;charset=utf-8")
        return _not_found("package_show", "Not found", 404)

    async def datastore_search(request: Request) -> Response:
        query = dict(request.query_params)
        calls.append(query)
        if query.get("resource_id") != resource_id:
            return _not_found("datastore_search", f'Resource "{query.get("resource_id")}"', 404)
        limit = min(int(query.get("limit", 100)), rows_max)
        offset = int(query.get("offset", 0))
        result = _page(table, resource_id, limit, offset)
        if success_false:
            return _not_found("datastore_search", "Internal error", 200)
        if fail and offset >= fail_at_offset:
            return failure(fail, _envelope("datastore_search", result))
        return json_response(_envelope("datastore_search", result))

    app = Starlette(
        routes=[
            Route(f"{ACTION}/package_show", package_show),
            Route(f"{ACTION}/datastore_search", datastore_search),
        ]
    )
    app.state.calls = calls
    return app


def _page(table: list[dict[str, Any]], resource_id: str, limit: int, offset: int) -> dict[str, Any]:
    columns = list(dict.fromkeys(key for row in table for key in row))
    start = f"{ACTION}/datastore_search?resource_id={resource_id}&limit={limit}"
    return {
        "include_total": True,
        "resource_id": resource_id,
        "fields": [{"type": "int" if c == "_id" else "text", "id": c} for c in columns],
        "records_format": "objects",
        "records": table[offset : offset + limit],
        "limit": limit,
        "offset": offset,
        # Relative, and present even past the end: a watcher must not follow it blindly.
        "_links": {"start": start, "next": f"{start}&offset={offset + limit}"},
        "total": len(table),
    }


def _envelope(action: str, result: Any) -> dict[str, Any]:
    help_url = f"https://data.gov.il/api/3/action/help_show?name={action}"
    return {"help": help_url, "success": True, "result": result}


def _not_found(action: str, message: str, status: int) -> Response:
    error = {"message": message, "__type": "Not Found Error"}
    body = {"help": f"https://data.gov.il/api/3/action/help_show?name={action}", "success": False}
    payload = json.dumps({**body, "error": error}, ensure_ascii=False).encode()
    return Response(payload, status_code=status, media_type="application/json; charset=utf-8")
