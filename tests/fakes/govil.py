"""gov.il's collectors gateway, its ``client-config.js``, and the dead old address.

No collector response has been recorded. The shapes are those of upstream.md
("gov.il collector") and the code it cites:

* ``GET /pub/cio/govil/rest/collectors/v1/api/DataCollector/GetResults`` answers
  ``{"total": n, "results": [...]}``, paged by ``skip``/``limit``, with
  ``CollectorType`` (repeated), ``officeId``, ``Type``, ``Status``, ``culture``
  (BK ``calls_for_bids/m_tmicha.py``, ``negev_galil.py``). Each result is
  ``{url, title, description, isExternal, tags: {metaData, promotedMetaData}}``; a
  label is a list of ``{"title": …}``: ``משרד`` and ``תאריך פרסום`` in ``metaData``,
  ``מספר`` and ``תאריך אחרון להגשה`` in ``promotedMetaData``, dates ``%d.%m.%Y``.
  ``url`` is relative and there is no ``urlName``.
* The gateway is an Apigee proxy: without the ``x-client-id`` it answers HTTP 500
  ``steps.oauth.v2.FailedToResolveAPIKey``, and without ``Origin: https://www.gov.il``
  HTTP 500 ``RF-OriginError`` (CECI ``.planning/docs/TRIBAL-KNOWLEDGE.md``; public
  scrapers report both as 500s). ``app.state.refusals`` records each refusal.
* ``GET /CollectorsWebApi/client-config.js`` is
  ``window['govilRunConfig'] = {"dataCollectorWebApi": …, "clientId": …};``
  (CECI ``src/gov_scraper/scrapers/catalog.py``), naming this server's gateway.
* ``GET /CollectorsWebApi/api/DataCollector/GetResults``, the address before May
  2026, answers the site's HTML shell with status 200.

The values are real: the Ministry of Justice support-criteria list (titles,
offices, dates) and the mr.gov.il office tenders (numbers and deadlines).
``app.state.calls`` records each query and its headers.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests.fakes.budgetkey import criteria_rows
from tests.fakes.jsonapi import Failure, failure, json_response
from tests.fakes.mrgov import office_tenders

GATEWAY = "/pub/cio/govil/rest/collectors/v1"
COLLECTOR = f"{GATEWAY}/api/DataCollector/GetResults"
OLD_COLLECTOR = "/CollectorsWebApi/api/DataCollector/GetResults"
CLIENT_CONFIG = "/CollectorsWebApi/client-config.js"
#: A client id of the shape gov.il publishes (48 letters and digits).
CLIENT_ID = "Zk3q8TfV1mLr9XwB2cYp7HsN4dQa6GuE0jKo5RtI3vWx8LmC"
SITE = "https://www.gov.il"

#: The SPA shell www.gov.il serves for any unknown path, old API addresses included.
SHELL = (
    '<!DOCTYPE html><html lang="he" dir="rtl"><head><meta charset="utf-8">'
    '<title>gov.il</title><script src="/CollectorsWebApi/client-config.js"></script>'
    '</head><body><app-root></app-root><script src="/main.js"></script></body></html>'
)


def office_id(name: str) -> str:
    """A stable GUID for an office name, as gov.il identifies offices by GUID."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"gov.il/office/{name}"))


def _labels(values: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {label: [{"title": text}] for label, text in values.items() if text}


def result(
    title: str, description: str, meta: dict[str, str], promoted: dict[str, str]
) -> dict[str, Any]:
    """One collector result; its ``url`` slug is made from the office, title and date."""
    # Re-published criteria repeat office and title, so the date is part of the name.
    seed = f"{meta.get('משרד')}|{title}|{meta.get('תאריך פרסום')}"
    slug = hashlib.sha1(seed.encode()).hexdigest()[:12]
    return {
        "url": f"/he/departments/publications/Call_for_bids/{slug}",
        "title": title,
        "description": description,
        "isExternal": False,
        "tags": {"metaData": _labels(meta), "promotedMetaData": _labels(promoted)},
    }


def criteria_results() -> list[dict[str, Any]]:
    """Results from the support-criteria list (ISO dates turned into ``DD.MM.YYYY``)."""
    results = []
    for row in criteria_rows():
        if not row["title"]:
            continue  # two rows of the list are empty
        day = ".".join(reversed(row["date"].split("-"))) if row["date"] else ""
        meta = {"משרד": row["office"], "תאריך פרסום": day, "קהל יעד": row["expected_purpose"]}
        results.append(result(row["title"], row["expected_purpose"], meta, {}))
    return results


def tender_results() -> list[dict[str, Any]]:
    """Results from the office tenders: real numbers and deadlines, dates without an hour."""
    results = []
    for record in office_tenders():
        meta = {"משרד": record["שם המשרד"], "תאריך פרסום": record["תאריך פרסום"]}
        promoted = {
            "מספר": record["מספר הליך"],
            "תאריך אחרון להגשה": record["תאריך אחרון להגשת השגות"],
        }
        results.append(result(record["שם הליך"], "", meta, promoted))
    return results


def _fault(status: int, faultstring: str, errorcode: str) -> Response:
    body = {"fault": {"faultstring": faultstring, "detail": {"errorcode": errorcode}}}
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _office_of(found: dict[str, Any]) -> str:
    return str(found["tags"]["metaData"].get("משרד", [{}])[0].get("title", ""))


def build_app(
    results: list[Any] | None = None,
    *,
    client_id: str = CLIENT_ID,
    script: str | None = None,
    fail: Failure | None = None,
    fail_at_skip: int = 0,
    answer: Any = None,
    limit_cap: int | None = None,
) -> Starlette:
    """Build gov.il: the gateway, ``client-config.js`` and the old address.

    ``script`` replaces ``client-config.js``; ``answer``, when given, is served as
    the JSON of every collector request; ``limit_cap`` caps ``limit`` silently,
    as a server limit would.
    """
    served = criteria_results() if results is None else results
    calls: list[dict[str, Any]] = []
    refusals: list[str] = []

    async def collector(request: Request) -> Response:
        query, headers = request.query_params, request.headers
        calls.append({"types": query.getlist("CollectorType"), **dict(query), "headers": headers})
        if headers.get("x-client-id") != client_id:
            refusals.append("FailedToResolveAPIKey")
            variable = "Failed to resolve API Key variable request.header.x-client-id"
            return _fault(500, variable, "steps.oauth.v2.FailedToResolveAPIKey")
        if headers.get("origin") != SITE:
            refusals.append("RF-OriginError")
            return _fault(500, "RF-OriginError", "steps.raisefault.RaiseFault")
        if answer is not None:
            return json_response(answer)
        office = query.get("officeId")
        found = (
            served if office is None else [r for r in served if office_id(_office_of(r)) == office]
        )
        skip, limit = int(query.get("skip", 0)), int(query.get("limit", 10))
        page = found[skip : skip + min(limit, limit_cap or limit)]
        payload = {"total": len(found), "results": page}
        if fail and skip >= fail_at_skip:
            return failure(fail, payload)
        return json_response(payload)

    async def client_config(request: Request) -> Response:
        config = {
            "dataCollectorWebApi": f"{str(request.base_url).rstrip('/')}{GATEWAY}",
            "clientId": client_id,
            "culture": "he",
        }
        text = script or f"window['govilRunConfig'] = {json.dumps(config)};"
        return Response(text, media_type="application/javascript")

    async def shell(request: Request) -> Response:
        return HTMLResponse(SHELL)

    app = Starlette(
        routes=[
            Route(COLLECTOR, collector),
            Route(CLIENT_CONFIG, client_config),
            Route(OLD_COLLECTOR, shell),
        ]
    )
    app.state.calls = calls
    app.state.refusals = refusals
    return app
