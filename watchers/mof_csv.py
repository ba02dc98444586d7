"""Read the Ministry of Finance CSV files: budget-change lines and programme budgets.

The MoF writes Hebrew CSV in windows-1255 (some copies are UTF-8), with one to
four header rows, amounts in thousands of shekels (``"6,830"``) and dates with
Hebrew month names (``27-ינו-14``, or ``0`` when missing). Every amount returned
here is in shekels; every budget code follows the project convention: ``"00"``
followed by the section, domain and programme digit pairs (``15201`` →
``"00015201"``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime

from agent.errors import SourceError
from watchers.parsing import parse_amount, parse_date

#: MoF amounts are thousands of shekels.
THOUSANDS = 1000.0
#: The columns that identify a change line; the header row is the one holding them.
_KEY_COLUMNS = ("שנה", "סעיף מוביל", "מספר בקשה")
#: Approval date in ``approv`` files, sending date in ``vaada`` files.
_DATE_COLUMNS = ("תאריך אישור", "תאריך משלוח לוועדה", "תאריך משלוח לועדה")


@dataclass(frozen=True)
class Line:
    """One change line: one programme's share of one budget-change request."""

    transaction_id: str
    year: int
    leading_item: int
    title: str
    change_names: tuple[str, ...]
    budget_code: str | None
    programme: str
    net: float
    date: datetime | None
    row: dict[str, str]


@dataclass(frozen=True)
class Budget:
    """Programme net budgets (shekels) by ``(year, code)``, and section names by code."""

    net: dict[tuple[int | None, str], float] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)

    def base(self, year: int, codes: list[str]) -> float | None:
        """Return the summed net budget of ``codes`` in ``year``, or None if none is known."""
        known = [
            self.net.get((year, code), self.net.get((None, code))) for code in dict.fromkeys(codes)
        ]
        values = [value for value in known if value is not None]
        return sum(values) if values else None


def decode(body: bytes, encoding: str, url: str) -> str:
    """Decode a MoF file: ``auto`` tries UTF-8, then windows-1255; else the named codec."""
    if encoding == "auto":
        try:
            return body.decode("utf-8-sig")
        except UnicodeDecodeError:
            return body.decode("windows-1255", errors="replace")
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SourceError(f"{url}: not {encoding}: {exc}") from exc


def read_lines(text: str, url: str) -> list[Line]:
    """Parse a budget-changes CSV into lines, skipping blank and total rows."""
    rows = list(csv.reader(io.StringIO(text)))
    start = next((i for i, row in enumerate(rows) if _is_header(row)), None)
    if start is None:
        raise SourceError(f"{url}: no budget-changes header ({', '.join(_KEY_COLUMNS)})")
    header = [_name(cell) for cell in rows[start]]
    lines = []
    for cells in rows[start + 1 :]:
        row = {name: cell.strip() for name, cell in zip(header, cells, strict=False) if name}
        if (line := _line(row)) is not None:
            lines.append(line)
    return lines


def read_budget(text: str) -> Budget:
    """Parse a MoF budget-items CSV (one year row above the column names, or none)."""
    rows = list(csv.reader(io.StringIO(text)))
    start = next((i for i, row in enumerate(rows) if "קוד תוכנית" in map(_name, row)), None)
    if start is None:
        return Budget()
    header = [_name(cell) for cell in rows[start]]
    years = _years(rows[start - 1] if start else [], len(header))
    net_columns = [(i, years[i]) for i, name in enumerate(header) if name == "הוצאה נטו"]
    budget = Budget()
    for cells in rows[start + 1 :]:
        row = dict(zip(header, cells, strict=False))
        if section := _digits(row.get("קוד סעיף", "")):
            budget.sections.setdefault(section.zfill(2), row.get("שם סעיף", "").strip(" -"))
        code = convention_code(row.get("קוד תוכנית", ""))
        for column, year in net_columns:
            value = parse_amount(cells[column], scale=THOUSANDS) if column < len(cells) else None
            if code and value is not None:
                budget.net[(year, code)] = value
    return budget


def convention_code(text: str) -> str | None:
    """Turn ``15201`` or ``00-01-01`` into the project's ``"00"`` + digit-pairs code."""
    digits = _digits(text)
    return "00" + digits.zfill(6) if digits and int(digits) else None


def _line(row: dict[str, str]) -> Line | None:
    year, leading, request = (_int(row.get(column, "")) for column in _KEY_COLUMNS)
    if year is None or leading is None or request is None:
        return None
    date_text = next((row[c] for c in _DATE_COLUMNS if row.get(c)), None)
    return Line(
        transaction_id=f"{year}/{leading:02d}-{request:03d}",
        year=year,
        leading_item=leading,
        title=row.get("תיאור בקשה", ""),
        change_names=tuple(n for n in (row.get("שם סוג בקשה"), row.get("שם שינוי")) if n),
        budget_code=convention_code(row.get("קוד תוכנית", "")),
        programme=row.get("שם תוכנית", ""),
        net=parse_amount(row.get("הוצאות נטו"), scale=THOUSANDS) or 0.0,
        date=parse_date(date_text),
        row=row,
    )


def _is_header(row: list[str]) -> bool:
    names = {_name(cell) for cell in row}
    return all(column in names for column in _KEY_COLUMNS)


def _years(row: list[str], width: int) -> list[int | None]:
    # A year labels its column group: it sits above the group's first column only.
    years: list[int | None] = []
    current: int | None = None
    for index in range(width):
        cell = row[index].strip() if index < len(row) else ""
        if re.fullmatch(r"(19|20)\d\d", cell):
            current = int(cell)
        years.append(current)
    return years


def _name(cell: str) -> str:
    return re.sub(r"\s+", " ", cell.replace("\ufeff", "")).strip()


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _int(text: str) -> int | None:
    try:
        return int(float(text.replace(",", "")))
    except ValueError:
        return None
