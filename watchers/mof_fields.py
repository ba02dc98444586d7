"""How the Ministry of Finance's budget-change files spell their columns and dates.

Column names changed over the years; the aliases are the ones Budget Key's
``concatenate`` step maps (``budget/national/changes/original/pipeline-spec.yaml``).
Dates come as ``%d/%m/%Y``, ISO or ``%m/%d/%y`` (``original/fix_values.py``), and
as ``27-ינו-14`` in older copies. They are Israel dates; a missing one is ``0`` or empty.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum

from watchers.parsing import ISRAEL, parse_date


class Column(StrEnum):
    """A change-line field, named as Budget Key names it."""

    YEAR = "year"
    LEADING = "leading_item"
    REQUEST = "req_code"
    TITLE = "req_title"
    CHANGE_NAME = "change_title"
    TYPE_NAME = "change_type_name"
    CODE = "budget_code"
    PROGRAMME = "budget_title"
    NET = "net_expense_diff"
    GROSS = "gross_expense_diff"
    ALLOCATED = "allocated_income_diff"
    COMMITMENT = "commitment_limit_diff"
    PERSONNEL = "personnel_max_diff"
    DATE = "date"


#: Every spelling of each column, the preferred first (BK ``original/pipeline-spec.yaml``).
ALIASES: dict[Column, tuple[str, ...]] = {
    Column.YEAR: ("שנה",),  # also " שנה": names are compared without white space
    Column.LEADING: ("סעיף מוביל", "מספר הסעיף", "סעיף"),
    Column.REQUEST: ("מספר בקשה",),
    Column.TITLE: ("תיאור בקשה",),
    Column.CHANGE_NAME: ("שם שינוי",),
    Column.TYPE_NAME: ("שם סוג בקשה",),
    Column.CODE: ("קוד תוכנית", "מספר תוכנית"),
    Column.PROGRAMME: ("שם תוכנית",),
    Column.NET: ("הוצאות נטו", "סכום השינוי: הוצאות נטו"),
    Column.GROSS: ("הוצאה מותנית בהכנסה", "סכום השינוי: הוצאה מותנית"),
    Column.ALLOCATED: ("הכנסה מיועדת", "סכום השינוי: הכנסה מיועדת"),
    Column.COMMITMENT: ("הרשאה להתחייב", "סכום השינוי: הרשאה להתחייב"),
    Column.PERSONNEL: ("שיא כא", "סכום השינוי: שיא כח אדם"),
    # Approval date in ``approv`` files, the date sent to the committee in ``vaada`` files.
    Column.DATE: ("תאריך אישור", "תאריך משלוח לוועדה", "תאריך משלוח לועדה"),
}
#: The columns that identify a change line: the header row is the one naming all three.
KEY_COLUMNS = (Column.YEAR, Column.LEADING, Column.REQUEST)
#: Budget Key's date formats, in its order (``original/fix_values.py``). They never overlap:
#: ``%Y`` takes four digits and ``%y`` two, so ``03/04/2014`` is 3 April and ``03/04/14``
#: is 4 March. BK keeps the last that parses; at most one does.
DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%dT%H:%M:%S", "%m/%d/%y")
_HEBREW_DATE = re.compile(r"^\d{1,2}-[\u0590-\u05ff]+-\d{2,4}$")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")


def find_columns(row: list[str]) -> dict[Column, int] | None:
    """Map each known column to its index, if ``row`` is the header row; else return None."""
    index = {_key(name): i for i, name in reversed(list(enumerate(row)))}
    columns: dict[Column, int] = {}
    for column, aliases in ALIASES.items():
        found = next((index[_key(a)] for a in aliases if _key(a) in index), None)
        if found is not None:
            columns[column] = found
    return columns if all(c in columns for c in KEY_COLUMNS) else None


def parse_day(text: str | None) -> date | None:
    """Parse a MoF date cell into an Israel date; ``0``, empty or unknown forms are None."""
    text = (text or "").strip()
    if text in {"", "0"}:
        return None
    day: date | None = None
    for form in DATE_FORMATS:
        try:
            day = datetime.strptime(text, form).date()
        except ValueError:
            continue
    if day is not None:
        return day
    if _ISO_DAY.match(text):
        try:
            return datetime.fromisoformat(text).date()
        except ValueError:
            return None
    if _HEBREW_DATE.match(text) and (moment := parse_date(text)) is not None:
        return moment.astimezone(ISRAEL).date()
    return None


def _key(name: str) -> str:
    # " שנה", "שיא כ\"א" and a header broken over two lines all name the same column.
    return re.sub(r"[\s\"'\u05f3\u05f4\ufeff]", "", name)
