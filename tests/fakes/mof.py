"""A Ministry of Finance / gov.il server for the budget-changes files.

Routes:

* ``GET /BlobFolder/<any path>/<name>.csv`` serves the recorded 2014 changes file
  (``fixtures/budgetkey/budget-changes/mof_changes-2014.csv``) under whatever name
  is asked for, so a test can call it ``BudgetChanges_vaada_data_…`` or
  ``BudgetChanges_approv_data_…``. Knobs: ``?encoding=windows-1255`` re-encodes
  it as the MoF originals are; ``?only=1-4`` keeps the lines of one request
  (leading item 1, request 4); ``?status=500`` fails. ``explain`` and non-CSV
  names answer 404, so a watcher that reads them fails its test.
* ``GET /budget/mof_budget20132014.csv`` serves the recorded budget-items file
  (``?encoding=`` too).
* ``GET /he/pages/budget-changes-current-year?files=a.csv,b.csv`` is a gov.il-like
  page linking those files (relative links), next to ``explain`` and XLSX links
  that must be ignored. ``?blocked=1`` answers 403 as Cloudflare does.
"""

from __future__ import annotations

import csv
import io

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests.conftest import FIXTURES

#: The recorded change lines (UTF-8; the MoF originals are windows-1255).
CHANGES = FIXTURES / "budgetkey" / "budget-changes" / "mof_changes-2014.csv"
#: The recorded programme budgets for 2013 and 2014.
BUDGET = FIXTURES / "budgetkey" / "budget-items" / "mof_budget20132014.csv"
#: Where the page's links point, as on gov.il.
BLOB = "/BlobFolder/generalpage/budget-changes-current-year/he"


def only(text: str, request: str) -> str:
    """Keep the header and the lines of one ``leading-request`` pair (``1-4``)."""
    leading, number = request.split("-")
    rows = list(csv.reader(io.StringIO(text)))
    kept = [rows[0], *(row for row in rows[1:] if row[1:3] == [leading, number])]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(kept)
    return out.getvalue()


async def _changes(request: Request) -> Response:
    name = request.path_params["path"].rsplit("/", 1)[-1]
    if "explain" in name or not name.endswith(".csv"):
        return Response("not a data file", status_code=404)  # a watcher must not ask
    if status := request.query_params.get("status"):
        return Response("upstream failed", status_code=int(status))
    text = CHANGES.read_text(encoding="utf-8")
    if request_id := request.query_params.get("only"):
        text = only(text, request_id)
    return _csv(text, request)


async def _budget(request: Request) -> Response:
    return _csv(BUDGET.read_text(encoding="utf-8"), request)


def _csv(text: str, request: Request) -> Response:
    encoding = request.query_params.get("encoding", "utf-8")
    return Response(text.encode(encoding), media_type="text/csv")


async def _page(request: Request) -> Response:
    if request.query_params.get("blocked"):
        return HTMLResponse("<html><body>Access denied</body></html>", status_code=403)
    names = [n for n in request.query_params.get("files", "").split(",") if n]
    links = [f'<li><a href="{BLOB}/{name}">{name}</a></li>' for name in names]
    ignored = [
        f'<li><a href="{BLOB}/BudgetChanges_approv_explain_01052014.csv">הסברים</a></li>',
        f'<li><a href="{BLOB}/BudgetChanges_approv_data_01052014.xlsx">אקסל</a></li>',
    ]
    body = "".join(links + ignored)
    page = f'<html dir="rtl"><body><h1>שינויים בתקציב</h1><ul>{body}</ul></body></html>'
    return HTMLResponse(page)


#: The MoF server's Starlette app.
app = Starlette(
    routes=[
        Route("/BlobFolder/{path:path}", _changes),
        Route("/budget/{name}", _budget),
        Route("/he/pages/budget-changes-current-year", _page),
    ]
)
