"""A gov.il / Ministry of Finance server for the budget-change files, as they really come.

Evidence for each shape is the shared docs' upstream.md, "Ministry of Finance
budget-change CSVs", and the Budget Key (BK) code it names, under
``datapackage_pipelines_budgetkey/pipelines/budget/national/changes/``.

Routes:

* ``GET /he/pages/budget-changes-current-year`` is the page as a client without
  JavaScript gets it: gov.il's HTML shell with none of the file links (BK
  ``current_year_urls.py``: "the page is rendered client-side, so the original
  document has none of the links"). ``?blocked=1`` answers 403 as Cloudflare does.
* ``GET /ContentPageWebApi/api/content-pages/budget-changes-current-year?culture=he``
  is the JSON behind that page: ``contentMain.htmlContents[0].sectionData`` holds
  the HTML with the links (BK commit 473a849b ``current_year_urls.py``;
  ``procurement/calls_for_bids/class_action.py`` reads the same API; nothing else
  of the answer is known, so nothing else is served). ``?files=a.csv,b.csv`` lists
  the data files (the first as an absolute link, the others relative), next to
  the ``explain`` and XLSX links the page also has. ``?files=`` gives a page with
  only those; ``?shape=empty`` answers ``{}``; ``?blocked=1`` answers 403.
* ``GET /BlobFolder/<any path>/<name>.csv`` serves the recorded 2014 change lines
  (``tests/data/budgetkey/budget-changes/mof_changes-2014.csv``) in the weekly
  files' shape: windows-1255, the column names on row 4 (BK ``original/current_year.py``
  ``TABULATOR = {'encoding': 'windows-1255', 'headers': 4}``; what rows 1–3 hold
  is not recorded, so they are a title, a date and a blank row), under whatever
  name is asked for. In a ``vaada`` file the date column is ``תאריך משלוח לוועדה``.
  Knobs, each a documented variant:

  - ``encoding=utf-8`` and ``layout=recorded`` (the column names on row 1) give
    the recorded copy's own shape;
  - ``columns=spaced`` or ``columns=short``: the other column spellings BK's
    ``original/pipeline-spec.yaml`` maps (`` שנה``, ``מספר הסעיף`` or ``סעיף``,
    ``מספר תוכנית``, ``סכום השינוי: …``);
  - ``dates=dmy|iso|mdy``: the date forms of BK ``original/fix_values.py``
    (``%d/%m/%Y``, ``%Y-%m-%dT%H:%M:%S``, ``%m/%d/%y``) instead of ``27-ינו-14``;
  - ``pad=1``: codes zero-padded to 8 digits; ``excel=1``: every cell written
    ``="…"``, Excel's escape (BK ``processors/resource_without_excel_formulas_lib.py``);
  - ``gzip=1``: the body gzipped, still ``text/csv`` with no ``Content-Encoding``;
    ``gzip=2``: that gzipped file sent again with ``Content-Encoding: gzip`` (BK
    reads the raw bytes and gunzips by magic, whatever the headers say);
    ``gzip=cut``: a gzipped body cut in half;
  - ``malformed=1``: bad rows among the good (a total, a year that is no number,
    an amount that is no number, a cut-off row);
  - ``only=1-4`` keeps the lines of one request (leading item 1, request 4);
    ``status=500`` fails. ``explain`` and non-CSV names answer 404.
* ``GET /budget/mof_budget20132014.csv`` serves the recorded budget-items file
  (``?encoding=`` too).
"""

from __future__ import annotations

import csv
import gzip
import io
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests.conftest import FIXTURES
from watchers.parsing import ISRAEL, parse_date

#: The recorded change lines (UTF-8; the MoF originals are windows-1255).
CHANGES = FIXTURES / "budgetkey" / "budget-changes" / "mof_changes-2014.csv"
#: The recorded programme budgets for 2013 and 2014.
BUDGET = FIXTURES / "budgetkey" / "budget-items" / "mof_budget20132014.csv"
#: Where the page's links point, as on gov.il.
BLOB = "/BlobFolder/generalpage/budget-changes-current-year/he"
#: The human page and its content API, as on gov.il.
PAGE = "/he/pages/budget-changes-current-year"
CONTENT_API = "/ContentPageWebApi/api/content-pages/budget-changes-current-year"
#: Column spellings of other years (BK ``original/pipeline-spec.yaml`` ``concatenate``).
COLUMNS = {
    "spaced": {
        "שנה": " שנה",
        "סעיף מוביל": "מספר הסעיף",
        "קוד תוכנית": "מספר תוכנית",
        "הוצאות נטו": "סכום השינוי: הוצאות נטו",
        "הוצאה מותנית בהכנסה": "סכום השינוי: הוצאה מותנית",
        "הכנסה מיועדת": "סכום השינוי: הכנסה מיועדת",
        "הרשאה להתחייב": "סכום השינוי: הרשאה להתחייב",
        "שיא כא": "סכום השינוי: שיא כח אדם",
    },
    "short": {"סעיף מוביל": "סעיף"},
}
#: BK ``original/fix_values.py`` formats.
DATES = {"dmy": "%d/%m/%Y", "iso": "%Y-%m-%dT%H:%M:%S", "mdy": "%m/%d/%y"}
#: Rows 1-3 of a weekly file, above the column names.
PREAMBLE = [["שינויים בתקציב לשנה השוטפת"], ["נכון לתאריך 01/05/2014"], []]
#: Rows no reader can make a change line of.
MALFORMED = [
    ['סה"כ', *[""] * 10, "1,234", "0", "0", "0", "0", ""],
    ["2O14", "1", "9", "שנה שגויה", "1", "x", "2", "x", "0", "15101", "x", "5", *["0"] * 4, ""],
    ["2014", "1", "9", "סכום שגוי", "1", "x", "2", "x", "0", "15101", "x", "אלף", *["0"] * 4, ""],
    ["2014", "1", "9"],
]
#: Column indexes in the recorded file.
LEADING, REQUEST, CODE, DATE = 1, 2, 9, 16


def table(request: Request, name: str) -> list[list[str]]:
    """Return the recorded rows (header first), transformed as the query asks."""
    header, *rows = list(csv.reader(io.StringIO(CHANGES.read_text(encoding="utf-8"))))
    query = request.query_params
    if wanted := query.get("only"):
        rows = [row for row in rows if "-".join(row[LEADING : REQUEST + 1]) == wanted]
    if "vaada" in name:
        header = [("תאריך משלוח לוועדה" if cell == "תאריך אישור" else cell) for cell in header]
    header = [COLUMNS.get(query.get("columns", ""), {}).get(cell, cell) for cell in header]
    for row in rows:
        if form := DATES.get(query.get("dates", "")):
            row[DATE] = _redate(row[DATE], form)
        if query.get("pad"):
            row[CODE] = row[CODE].zfill(8)
    if query.get("malformed"):
        rows = rows[:2] + MALFORMED + rows[2:]
    return [header, *rows]


def _redate(text: str, form: str) -> str:
    moment = parse_date(text)
    assert moment is not None, text
    return moment.astimezone(ISRAEL).replace(tzinfo=None).strftime(form)


def render(rows: list[list[str]], request: Request) -> bytes:
    """Write ``rows`` as the MoF writes them: preamble, Excel escapes, encoding."""
    query = request.query_params
    if query.get("layout") != "recorded":
        rows = PREAMBLE + rows
    out = io.StringIO()
    if query.get("excel"):
        for row in rows:
            out.write(",".join('="{}"'.format(cell.replace('"', '""')) for cell in row) + "\r\n")
    else:
        csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(query.get("encoding", "windows-1255"))


async def _changes(request: Request) -> Response:
    name = request.path_params["path"].rsplit("/", 1)[-1]
    if "explain" in name or not name.endswith(".csv"):
        return Response("not a data file", status_code=404)  # a watcher must not ask
    if status := request.query_params.get("status"):
        return Response("upstream failed", status_code=int(status))
    body = render(table(request, name), request)
    packing = request.query_params.get("gzip", "")
    layers = {"1": 1, "2": 2, "cut": 1}.get(packing, 0)
    for _ in range(layers):
        body = gzip.compress(body, mtime=0)
    if packing == "cut":
        body = body[: len(body) // 2]  # a download cut short
    headers = {"Content-Encoding": "gzip"} if packing == "2" else {}
    return Response(body, media_type="text/csv", headers=headers)


async def _budget(request: Request) -> Response:
    encoding = request.query_params.get("encoding", "utf-8")
    return Response(BUDGET.read_text(encoding="utf-8").encode(encoding), media_type="text/csv")


async def _page(request: Request) -> Response:
    if request.query_params.get("blocked"):
        return HTMLResponse("<html><body>Access denied</body></html>", status_code=403)
    shell = (
        '<!DOCTYPE html><html lang="he" dir="rtl"><head><title>gov.il</title>'
        '<script src="/assets/main.js"></script></head><body><app-root></app-root></body></html>'
    )
    return HTMLResponse(shell)


async def _content_page(request: Request) -> Response:
    query = request.query_params
    if query.get("blocked"):
        return HTMLResponse("<html><body>Access denied</body></html>", status_code=403)
    if query.get("shape") == "empty":
        return Response("{}", media_type="application/json")
    names = [n for n in query.get("files", "").split(",") if n]
    base = str(request.base_url).rstrip("/")
    hrefs = [f"{base if i == 0 else ''}{BLOB}/{name}" for i, name in enumerate(names)]
    hrefs += [f"{BLOB}/BudgetChanges_approv_explain_01052014.csv"]
    hrefs += [f"{BLOB}/BudgetChanges_approv_data_01052014.xlsx"]
    items = "".join(f'<li><a href="{href}">{href.rsplit("/", 1)[-1]}</a></li>' for href in hrefs)
    section = (
        f"<p>שינויים בתקציב לשנה השוטפת המונחים על שולחן ועדת הכספים של הכנסת</p><ul>{items}</ul>"
    )
    answer = {"contentMain": {"htmlContents": [{"sectionData": section}]}}
    return Response(json.dumps(answer, ensure_ascii=False), media_type="application/json")


#: The gov.il / MoF server's Starlette app.
app = Starlette(
    routes=[
        Route("/BlobFolder/{path:path}", _changes),
        Route("/budget/{name}", _budget),
        Route(PAGE, _page),
        Route(CONTENT_API, _content_page),
    ]
)
