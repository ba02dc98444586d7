"""Real 2017 tender and exemption rows from mr.gov.il, as data.gov.il datastore records.

No data.gov.il or Budget Key JSON response has been recorded, so the fakes build
theirs from the values of the recorded mr.gov.il pages
(``fixtures/budgetkey/tenders``): the office-tenders grid (10 rows), the
exemptions grid (10 rows) and the page of publication 596915 (the one real
deadline with an hour, ``13:00 25/07/2017``).

Records use the Hebrew column names of data.gov.il (sources.md §3) and its
``DD.MM.YYYY`` date text. What the grids lack is left empty, except ``שם הליך``
of an exemption: the grid has no title, so it is composed from the regulation
and the supplier (the way the register's notices read).

``office_tenders()`` and ``exemptions()`` give the columns Budget Key maps
(``naama_scraper.py``) with the 2017 texts (``ש"ח``, ``15,191``);
``tenders_2026()`` and ``exemptions_2026()`` give the same rows in the columns of
the 2026 mr.gov.il exports (upstream.md "data.gov.il CKAN registers"), with
``ILS`` and plain amounts (``15191``).
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

from tests.conftest import FIXTURES

TENDERS_DIR = FIXTURES / "budgetkey" / "tenders"
OFFICE_GRID = TENDERS_DIR / "mr.gov.il_SearchOfficeTenders.aspx.html"
EXEMPTIONS_GRID = TENDERS_DIR / "mr.gov.il_SearchExemptionMessages.aspx.html"
PUBLICATION = TENDERS_DIR / "mr.gov.il_publication_596915.html"

#: data.gov.il's ``סוג הליך`` for an office tender and for an exemption notice.
OFFICE_TYPE = "מכרז פומבי"
EXEMPTION_TYPE = "התקשרות בפטור במכרז או בהליך תחרותי אחר"

#: Every column a record carries, in data.gov.il's order (sources.md §3).
COLUMNS = (
    "מספר פרסום", "סוג הליך", "מספר הליך", "שם הליך", "נושאים", "שם המשרד",
    "שם יחידה מפרסמת", "תאריך פרסום", "תאריך עדכון", "תאריך אחרון להגשת השגות",
    "שעה אחרונה להגשת השגות", "תאריך תחילת תקופת התקשרות", "תאריך סיום תקופת התקשרות",
    "סטטוס", "מהות החלטה", "גורם מאשר", "תקנה", "היקף כספי", "מטבע", "מספר חפ ספק",
)  # fmt: skip


#: The 2026 tenders register: 17 columns; no decision, regulation, approver, amount,
#: currency or text link, but a basket name and a winning supplier (upstream.md).
TENDER_COLUMNS_2026 = (
    "מספר פרסום", "סוג הליך", "מספר הליך", "שם הליך", "נושאים", "שם המשרד",
    "שם יחידה מפרסמת", "תאריך פרסום", "תאריך עדכון", "תאריך אחרון להגשת השגות",
    "שעה אחרונה להגשת השגות", "תאריך תחילת תקופת התקשרות", "תאריך סיום תקופת התקשרות",
    "סטטוס", "מספר חפ ספק", "שם ספק זוכה", "שם הסל",
)  # fmt: skip
#: The 2026 exemptions register: 22 columns, with ``שם ספק`` and ``לינק לטקסטים``.
EXEMPTION_COLUMNS_2026 = (*COLUMNS, "שם ספק", "לינק לטקסטים")


class _GridParser(HTMLParser):
    """Collect the cells (text, and the ``pID`` of a link) of ``GridMichrazim`` rows."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[str, str | None]]] = []
        self._in_grid = False
        self._cell: list[str] | None = None
        self._pid: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table" and "GridMichrazim" in (found.get("class") or ""):
            self._in_grid = True
        elif self._in_grid and tag == "tr" and "grdRow" in (found.get("class") or ""):
            self.rows.append([])
        elif self._in_grid and tag == "td" and self.rows:
            self._cell, self._pid = [], None
        elif self._cell is not None and tag == "a":
            match = re.search(r"pID=(\d+)", found.get("href") or "")
            self._pid = match[1] if match else self._pid

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_grid = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append(("".join(self._cell).strip(), self._pid))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def grid_rows(path: Path) -> list[list[tuple[str, str | None]]]:
    """Return the grid rows of a recorded mr.gov.il search page: ``(text, pID)`` cells."""
    parser = _GridParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.rows


def ckan_date(text: str) -> str:
    """Turn mr.gov.il's ``DD/MM/YYYY`` into data.gov.il's ``DD.MM.YYYY``."""
    return text.strip().replace("/", ".")


def split_publisher(text: str) -> tuple[str, str]:
    """Split ``משרד האוצר - רשות המסים בישראל`` into office and unit."""
    parts = re.split(r"\s+-\s+", text.strip(), maxsplit=1)
    return (parts[0], parts[1] if len(parts) > 1 else "")


def _record(**values: str) -> dict[str, str]:
    record = dict.fromkeys(COLUMNS, "")
    record.update(values)
    return record


def office_tenders() -> list[dict[str, str]]:
    """Return the 10 office tenders of the recorded grid, then publication 596915."""
    records = []
    for cells in grid_rows(OFFICE_GRID):
        number, title, publisher, published, deadline, status = (c[0] for c in cells[:6])
        office, unit = split_publisher(publisher)
        records.append(
            _record(
                **{"מספר פרסום": cells[1][1] or "", "סוג הליך": OFFICE_TYPE, "מספר הליך": number},
                **{"שם הליך": title, "שם המשרד": office, "שם יחידה מפרסמת": unit},
                **{"תאריך פרסום": ckan_date(published), "סטטוס": status},
                **{"תאריך אחרון להגשת השגות": ckan_date(deadline), "שם ספק זוכה": ""},
            )
        )
    return [*records, publication_596915()]


def publication_596915() -> dict[str, str]:
    """Return the recorded publication page 596915 as a record (deadline ``13:00``)."""
    text = PUBLICATION.read_text(encoding="utf-8")
    found = {
        m[1]: html.unescape(m[2]).strip()
        for m in re.finditer(r'id="ctl00_PlaceHolderMain_lbl_(\w+)"[^>]*>(.*?)</span>', text, re.S)
    }
    hour, day = found["ClaimDate"].split()
    office, unit = split_publisher(found["Publisher"])
    subjects = ",".join(s.strip() for s in found["PublicationSUBJECT"].split(";") if s.strip())
    return _record(
        **{"מספר פרסום": found["SERIAL_NUMBER"], "סוג הליך": OFFICE_TYPE},
        **{"מספר הליך": found["PublishNum"], "שם הליך": found["PublicationName"]},
        **{"שם המשרד": office, "שם יחידה מפרסמת": unit, "נושאים": subjects},
        **{"תאריך פרסום": ckan_date(found["PublishDate"]), "סטטוס": found["PublicationSTATUS"]},
        **{"תאריך עדכון": ckan_date(found["UpdateDate"]), "שם ספק זוכה": ""},
        **{"תאריך אחרון להגשת השגות": ckan_date(day), "שעה אחרונה להגשת השגות": hour},
    )


def exemptions(supplier_column: str = "שם ספק") -> list[dict[str, str]]:
    """Return the 10 exemption notices of the recorded grid.

    The exemptions register reportedly names its supplier column ``שם ספק``;
    ``supplier_column`` lets a test serve Budget Key's ``שם ספק זוכה`` instead.
    """
    records = []
    for cells in grid_rows(EXEMPTIONS_GRID):
        publisher, regulation, amount, supplier, subjects, start, end, decision = (
            c[0] for c in cells[:8]
        )
        office, unit = split_publisher(publisher)
        topics = ",".join(s.strip() for s in subjects.split(";") if s.strip())
        records.append(
            _record(
                **{"מספר פרסום": cells[0][1] or "", "סוג הליך": EXEMPTION_TYPE},
                **{"שם הליך": f"{regulation}: {supplier}", "שם המשרד": office},
                **{"שם יחידה מפרסמת": unit, "תקנה": regulation, "נושאים": topics},
                **{"היקף כספי": amount, "מטבע": 'ש"ח', supplier_column: supplier},
                **{"תאריך תחילת תקופת התקשרות": ckan_date(start)},
                **{"תאריך סיום תקופת התקשרות": ckan_date(end), "מהות החלטה": decision},
            )
        )
    return records


def as_2026(record: dict[str, str], columns: tuple[str, ...]) -> dict[str, str]:
    """Return ``record`` in a 2026 export's ``columns``: ``ILS``, plain amounts.

    The value of ``לינק לטקסטים`` is not documented, so it is left empty.
    """
    values = dict(record)
    if values.get("היקף כספי"):
        values["היקף כספי"] = values["היקף כספי"].replace(",", "")
    if values.get("מטבע"):
        values["מטבע"] = "ILS"
    return {column: values.get(column, "") for column in columns}


def tenders_2026() -> list[dict[str, str]]:
    """Return the 11 office tenders as rows of the 2026 tenders register (17 columns)."""
    return [as_2026(record, TENDER_COLUMNS_2026) for record in office_tenders()]


def exemptions_2026() -> list[dict[str, str]]:
    """Return the 10 exemption notices as rows of the 2026 exemptions register (22 columns)."""
    return [as_2026(record, EXEMPTION_COLUMNS_2026) for record in exemptions()]
