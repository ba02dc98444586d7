"""Read a Ministry of Finance budget-items CSV: each programme's net budget, and section names.

The file has one row of years above the column names (each year labels a group
of columns: ``הוצאה נטו``, ``הוצאה מותנית בהכנסה`` …), codes like ``00-01-01``
and amounts in thousands of shekels (``fixtures/budgetkey/budget-items``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.errors import SourceError
from watchers.mof_csv import THOUSANDS, convention_code, read_rows
from watchers.parsing import parse_amount


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


def read_budget(text: str, url: str) -> Budget:
    """Parse a MoF budget-items CSV (one year row above the column names, or none)."""
    rows = [cells for _, cells in read_rows(text)[0]]
    start = next((i for i, row in enumerate(rows) if "קוד תוכנית" in map(_name, row)), None)
    if start is None:
        raise SourceError(f"{url}: no budget-items header (קוד תוכנית)")
    header = [_name(cell) for cell in rows[start]]
    years = _years(rows[start - 1] if start else [], len(header))
    net_columns = [(i, years[i]) for i, name in enumerate(header) if name == "הוצאה נטו"]
    budget = Budget()
    for cells in rows[start + 1 :]:
        row = dict(zip(header, cells, strict=False))
        if section := re.sub(r"\D", "", row.get("קוד סעיף", "")):
            budget.sections.setdefault(section.zfill(2), row.get("שם סעיף", "").strip(" -"))
        code = convention_code(row.get("קוד תוכנית", ""))
        for column, year in net_columns:
            value = parse_amount(cells[column], scale=THOUSANDS) if column < len(cells) else None
            if code and value is not None:
                budget.net[(year, code)] = value
    return budget


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
