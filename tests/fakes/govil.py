"""A gov.il CollectorsWebApi serving results built from real recorded rows.

No collector response has been recorded. The results follow the shape that
``watchers.govil`` documents (from public scrapers of the API): ``{results,
total}``, each result ``{urlName, url, title, description, tags: {metaData,
promotedMetaData}}`` with label values as lists of ``{"title": …}``. Their values
are real: the Ministry of Justice support-criteria list (titles, offices, dates)
and the mr.gov.il office tenders (deadlines with an hour).

Routes: ``GET /CollectorsWebApi/api/DataCollector/GetResults`` (and the same under
the reported 2026 path ``/pub/cio/govil/rest/collectors/v1/api/DataCollector/GetResults``)
with ``CollectorType``, ``officeId``, ``culture``, ``skip``, ``limit``; and
``GET /CollectorsWebApi/client-config.js``. With ``client_id`` set, results need
that ``x-client-id`` header (else 401). ``app.state.calls`` records each query.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.budgetkey import criteria_rows
from tests.fakes.jsonapi import Failure, failure, json_response
from tests.fakes.mrgov import office_tenders

COLLECTOR = "/CollectorsWebApi/api/DataCollector/GetResults"
MOVED = "/pub/cio/govil/rest/collectors/v1/api/DataCollector/GetResults"
CLIENT_CONFIG = "/CollectorsWebApi/client-config.js"


def office_id(name: str) -> str:
    """A stable GUID for an office name, as gov.il identifies offices by GUID."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"gov.il/office/{name}"))


def _labels(values: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {label: [{"title": text}] for label, text in values.items() if text}


def _result(title: str, description: str, office: str, **labels: dict[str, str]) -> dict[str, Any]:
    # Re-published criteria repeat office and title, so the date is part of the name.
    published = labels.get("meta", {}).get("תאריך פרסום", "")
    slug = hashlib.sha1(f"{office}|{title}|{published}".encode()).hexdigest()[:12]
    return {
        "urlName": slug,
        "url": f"/he/departments/publications/Call_for_bids/{slug}",
        "title": title,
        "description": description,
        "officeId": office_id(office) if office else None,
        "tags": {
            "metaData": _labels({"משרד": office, **labels.get("meta", {})}),
            "promotedMetaData": _labels(labels.get("promoted", {})),
        },
    }


def criteria_results() -> list[dict[str, Any]]:
    """Results from the support-criteria list (ISO dates turned into ``DD.MM.YYYY``)."""
    results = []
    for row in criteria_rows():
        if not row["title"]:
            continue  # two rows of the list are empty
        day = ".".join(reversed(row["date"].split("-"))) if row["date"] else ""
        meta = {"תאריך פרסום": day, "קהל יעד": row["expected_purpose"]}
        results.append(_result(row["title"], row["expected_purpose"], row["office"], meta=meta))
    return results


def tender_results() -> list[dict[str, Any]]:
    """Results from the office tenders, whose deadlines are real (one with an hour)."""
    results = []
    for record in office_tenders():
        deadline = f"{record['תאריך אחרון להגשת השגות']} {record['שעה אחרונה להגשת השגות']}"
        meta = {"תאריך פרסום": record["תאריך פרסום"], "סטטוס": record["סטטוס"]}
        promoted = {"תאריך אחרון להגשה": deadline.strip()}
        office = record["שם המשרד"]
        results.append(_result(record["שם הליך"], "", office, meta=meta, promoted=promoted))
    return results


def pascal_case(value: Any) -> Any:
    """Rename every key ``title`` → ``Title`` (the .NET spelling), recursively."""
    if isinstance(value, list):
        return [pascal_case(v) for v in value]
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: pascal_case(v) for k, v in value.items()}
    return value


def build_app(
    results: list[dict[str, Any]] | None = None,
    *,
    pascal: bool = False,
    client_id: str | None = None,
    fail: Failure | None = None,
    fail_at_skip: int = 0,
    answer: Any = None,
    limit_cap: int | None = None,
) -> Starlette:
    """Build the collector; ``pascal`` answers ``{Results, TotalResults}`` in .NET case.

    ``answer``, when given, is served as the JSON of every request instead;
    ``limit_cap`` caps ``limit`` silently, as a server limit would.
    """
    served = criteria_results() if results is None else results
    calls: list[dict[str, Any]] = []

    async def collector(request: Request) -> Response:
        query = request.query_params
        calls.append({"types": query.getlist("CollectorType"), **dict(query)})
        if client_id and request.headers.get("x-client-id") != client_id:
            refusal = json_response({"error": "missing or wrong x-client-id"})
            refusal.status_code = 401
            return refusal
        if answer is not None:
            return json_response(answer)
        found = [r for r in served if query.get("officeId") in (None, r.get("officeId"))]
        skip, limit = int(query.get("skip", 0)), int(query.get("limit", 10))
        limit = min(limit, limit_cap or limit)
        page = found[skip : skip + limit]
        payload: dict[str, Any] = {"results": page, "total": len(found)}
        if pascal:
            payload = {"Results": pascal_case(page), "TotalResults": len(found)}
        if fail and skip >= fail_at_skip:
            return failure(fail, payload)
        return json_response(payload)

    async def client_config(request: Request) -> Response:
        script = f'window.__env = {{"apiUrl":"/pub/cio/govil/rest","clientId":"{client_id}"}};'
        return Response(script, media_type="application/javascript")

    app = Starlette(
        routes=[
            Route(COLLECTOR, collector),
            Route(MOVED, collector),
            Route(CLIENT_CONFIG, client_config),
        ]
    )
    app.state.calls = calls
    return app
