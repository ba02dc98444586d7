"""A CKAN action API (data.gov.il flavour) serving the real 2017 mr.gov.il rows.

The rows are in the columns of the 2026 mr.gov.il exports (``tests.fakes.mrgov``,
upstream.md "data.gov.il CKAN registers"): ``registers()`` serves them as
data.gov.il does, the tenders register (17 columns) and the exemptions register
(22 columns) as two datasets; by default both registers' rows are one table, as
the pipeline tests read them from one source. The envelope and paging are CKAN
2.x's (sources.md §11).

Routes, under ``/api/3/action``:

* ``package_show?id=<dataset>`` — a served dataset, whose resources are an XLSX
  copy (``datastore_active: false``) and then the datastore table; any other id
  is looked up among the recorded demo.ckan.org ``package_show`` files
  (``fixtures/ckan/demo.ckan.org``), else CKAN's 404 ``success: false``.
* ``datastore_search?resource_id=&limit=&offset=&sort=`` — the records with
  ``_id`` 1…n, each with every field of the table (``null`` where a row has
  none), the ``total``, and a **relative** ``_links.next`` present even on the
  last page. ``limit`` is capped at ``rows_max`` silently, as CKAN caps it.

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
from tests.fakes.mrgov import exemptions_2026, tenders_2026

#: The recorded demo.ckan.org ``package_show`` answers.
DEMO = FIXTURES / "ckan" / "demo.ckan.org"
#: The resource ids reported (third-party) for data.gov.il's tenders and exemptions tables.
TENDERS_RESOURCE = "7038b3e6-a74d-442e-b16b-466c8196124a"
EXEMPTIONS_RESOURCE = "65c8fced-c50c-400e-94fb-ef1a208c43e5"
#: Each dataset's resource name on data.gov.il (sources.md §3).
RESOURCE_NAMES = {"tenders": "דוח מכרזים", "exemptions": "דוח התקשרויות בפטור והליכים תחרותיים"}
#: A ``metadata_modified`` as CKAN writes it: naive UTC with microseconds.
MODIFIED = "2017-07-10T05:31:14.262184"
ACTION = "/api/3/action"


#: A dataset served: its datastore resource id and its rows.
Table = tuple[str, list[dict[str, Any]]]


def real_records() -> list[dict[str, Any]]:
    """Return the 11 office tenders and 10 exemptions (2026 columns), as one table."""
    return [*tenders_2026(), *exemptions_2026()]


def registers() -> dict[str, Table]:
    """Return data.gov.il's two registers as they are served: one dataset each."""
    return {
        "tenders": (TENDERS_RESOURCE, tenders_2026()),
        "exemptions": (EXEMPTIONS_RESOURCE, exemptions_2026()),
    }


def package(dataset: str, resource_id: str, modified: str = MODIFIED) -> dict[str, Any]:
    """Return a data.gov.il-like ``package_show`` result for ``dataset``."""
    base = f"https://data.gov.il/dataset/{dataset}/resource"
    name = RESOURCE_NAMES.get(dataset, "דוח מכרזים")
    xlsx = {"id": "0f6a1c52-5c2e-4c1b-9d7e-1b2f6a2c9e11", "name": f"{name} (אקסל)"}
    table = {"id": resource_id, "name": name}
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
    records: list[Any] | None = None,
    *,
    dataset: str = "tenders",
    resource_id: str = TENDERS_RESOURCE,
    tables: dict[str, Table] | None = None,
    modified: str = MODIFIED,
    rows_max: int = 32000,
    fail: Failure | None = None,
    fail_at_offset: int = 0,
    success_false: bool = False,
) -> Starlette:
    """Build the CKAN server; ``fail`` breaks ``datastore_search`` from ``fail_at_offset`` on.

    It serves ``tables`` (dataset name → resource id and rows), by default
    ``records`` (else ``real_records()``) as ``dataset`` with ``resource_id``.
    ``success_false`` makes ``datastore_search`` answer ``success: false`` with
    status 200, as some proxies relay CKAN errors.
    """
    if tables is None:
        tables = {dataset: (resource_id, real_records() if records is None else records)}
    stored = {rid: _store(rows) for rid, rows in tables.values()}
    calls: list[dict[str, str]] = []

    async def package_show(request: Request) -> Response:
        name = request.query_params.get("id", "")
        if name in tables:
            found = package(name, tables[name][0], modified)
            return json_response(_envelope("package_show", found))
        recorded = DEMO / f"package_show_{name}.json"
        if recorded.is_file():
            return Response(recorded.read_bytes(), media_type="application/json;charset=utf-8")
        return _not_found("package_show", "Not found", 404)

    async def datastore_search(request: Request) -> Response:
        # The client's User-Agent is kept with the query, for tests of what it sends.
        query = dict(request.query_params) | {"user-agent": request.headers.get("user-agent", "")}
        calls.append(query)
        wanted = query.get("resource_id", "")
        if wanted not in stored:
            return _not_found("datastore_search", f'Resource "{wanted}"', 404)
        limit = min(int(query.get("limit", 100)), rows_max)
        offset = int(query.get("offset", 0))
        result = _page(stored[wanted], wanted, limit, offset)
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


def _store(rows: list[Any]) -> list[Any]:
    """Number the rows with ``_id`` and give each every column, as the datastore keeps them."""
    columns = list(dict.fromkeys(key for row in rows if isinstance(row, dict) for key in row))
    return [
        {"_id": n, **dict.fromkeys(columns), **row} if isinstance(row, dict) else row
        for n, row in enumerate(rows, start=1)
    ]


def _page(table: list[Any], resource_id: str, limit: int, offset: int) -> dict[str, Any]:
    columns = list(dict.fromkeys(key for row in table if isinstance(row, dict) for key in row))
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
