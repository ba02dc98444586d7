"""Read the Ministry of Finance's budget-change CSV files into change lines.

The weekly files are windows-1255 CSV with the column names on row 4, amounts
in thousands of shekels (``"6,830"``), and column names that vary between years
(Budget Key's ``original/pipeline-spec.yaml`` maps every spelling). Bodies may be
gzipped and cells may carry Excel's ``="..."`` escape (Budget Key's
``resource_without_excel_formulas_lib.py``). Every amount returned here is in
shekels; every budget code is zero-padded to 8 digits (``15201`` → ``"00015201"``),
as Budget Key's ``original/fix_values.py`` pads them. A malformed data row is
skipped and counted, never the end of the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
import zlib
from dataclasses import dataclass, field
from datetime import date

from agent.errors import SourceError
from watchers.base import RECORD_ERRORS
from watchers.mof_fields import KEY_COLUMNS, Column, find_columns, parse_day
from watchers.parsing import parse_amount

logger = logging.getLogger(__name__)

#: MoF amounts are thousands of shekels.
THOUSANDS = 1000.0
#: The general reserve (הרזרבה הכללית): its programmes balance other sections' requests.
RESERVE_SECTION = 47
#: Gzip's magic bytes: the body is compressed whatever the headers say.
_GZIP_MAGIC = b"\x1f\x8b"
#: More gzip layers than this is no CSV file.
_MAX_GZIP_LAYERS = 3
#: Years, sections and request numbers are short; longer digit runs are no such number.
_MAX_DIGITS = 9
#: The amount columns, in Budget Key's ``value_fields`` order, and their unit in shekels.
AMOUNTS = (
    (Column.NET, THOUSANDS),
    (Column.GROSS, THOUSANDS),
    (Column.ALLOCATED, THOUSANDS),
    (Column.COMMITMENT, THOUSANDS),
    (Column.PERSONNEL, 1.0),  # positions, not money: Budget Key leaves it unscaled
)


@dataclass(frozen=True)
class Line:
    """One change line: one programme's share of one budget-change request."""

    request_id: str
    year: int
    leading_item: int
    title: str
    change_names: tuple[str, ...]
    budget_code: str | None
    programme: str
    #: The amount columns in ``AMOUNTS`` order: shekels, and personnel positions.
    diffs: tuple[float, ...]
    day: date | None
    url: str
    pending: bool
    row: dict[str, str]

    @property
    def net(self) -> float:
        """Return the net expense change in shekels."""
        return self.diffs[0]

    @property
    def is_reserve(self) -> bool:
        """Tell whether this is another section's line on the general reserve."""
        code = self.budget_code or ""
        return code.startswith(f"00{RESERVE_SECTION}") and self.leading_item != RESERVE_SECTION


@dataclass(frozen=True)
class Sheet:
    """What one file held: its change lines, and the data rows that were skipped."""

    lines: list[Line]
    skipped: list[int] = field(default_factory=list)


def unpack(body: bytes, url: str) -> bytes:
    """Gunzip by magic bytes and drop Excel's ``="`` cell escapes, as Budget Key does."""
    for _ in range(_MAX_GZIP_LAYERS):
        if not body.startswith(_GZIP_MAGIC):
            break
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise SourceError(f"{url}: broken gzip body: {exc}") from exc
    return body.replace(b'\n="', b'\n"').replace(b',="', b',"')


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


def read_lines(text: str, url: str, *, pending: bool) -> Sheet:
    """Parse a budget-changes CSV into lines; log and count the rows that make no line."""
    rows, unreadable = read_rows(text)
    found = next(((n, c) for n, row in rows if (c := find_columns(row)) is not None), None)
    if found is None:
        raise SourceError(f"{url}: no budget-changes header (year, leading item, request)")
    header_number, columns = found
    header = dict(rows)[header_number]
    lines: list[Line] = []
    skipped = [number for number in unreadable if number > header_number]
    undated = 0
    for number, cells in rows:
        if number <= header_number or not any(cell.strip() for cell in cells):
            continue
        try:
            line = _line(cells, columns, header, url, pending)
        except RECORD_ERRORS as exc:  # the checks below should leave none; a row is never fatal
            logger.warning("%s: row %d unreadable: %s: %s", url, number, type(exc).__name__, exc)
            line = None
        if line is None:
            skipped.append(number)
            continue
        lines.append(line)
        undated += line.day is None and _cell(cells, columns, Column.DATE) not in (None, "", "0")
    if skipped and not lines:
        raise SourceError(f"{url}: none of the {len(skipped)} data rows is a change line")
    if skipped:
        logger.warning("%s: skipped %d malformed rows (lines %s)", url, len(skipped), skipped[:10])
    if undated:
        logger.warning("%s: %d rows have a date in no known form; kept undated", url, undated)
    return Sheet(lines, skipped)


def convention_code(text: str) -> str | None:
    """Turn ``15201``, ``="00015201"`` or ``01-52-01`` into an 8-digit code, as Budget Key pads."""
    digits = re.sub(r"\D", "", text)
    # The length first: int() refuses thousands of digits.
    return digits.zfill(8) if digits and len(digits) <= 8 and int(digits) else None


def read_rows(text: str) -> tuple[list[tuple[int, list[str]]], list[int]]:
    """Read CSV rows numbered by physical line, and the line numbers csv could not read.

    An unreadable row (a cell over csv's field limit, a stray quote) is logged and
    skipped, never the end of the file.
    """
    reader = csv.reader(io.StringIO(text))
    rows: list[tuple[int, list[str]]] = []
    unreadable: list[int] = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return rows, unreadable
        except csv.Error as exc:
            logger.warning("unreadable CSV row %d skipped: %s", reader.line_num, exc)
            unreadable.append(reader.line_num)
            continue
        rows.append((reader.line_num, cells))


def _line(
    cells: list[str], columns: dict[Column, int], header: list[str], url: str, pending: bool
) -> Line | None:
    year, leading, request = (_int(_cell(cells, columns, c)) for c in KEY_COLUMNS)
    net = _cell(cells, columns, Column.NET)
    diffs = [_amount(_cell(cells, columns, column), scale) for column, scale in AMOUNTS]
    if year is None or leading is None or request is None or net is None:
        return None
    amounts = [value for value in diffs if value is not None]
    if len(amounts) < len(diffs):
        return None
    texts = {column: _cell(cells, columns, column) or "" for column in Column}
    return Line(
        request_id=f"{year}/{leading:02d}-{request:03d}",  # BK extract-change-groups.py
        year=year,
        leading_item=leading,
        title=texts[Column.TITLE],
        change_names=tuple(n for n in (texts[Column.TYPE_NAME], texts[Column.CHANGE_NAME]) if n),
        budget_code=convention_code(texts[Column.CODE]),
        programme=texts[Column.PROGRAMME],
        diffs=tuple(amounts),
        day=parse_day(texts[Column.DATE]),
        url=url,
        pending=pending,
        row={n.strip(): v.strip() for n, v in zip(header, cells, strict=False) if n.strip()},
    )


def _cell(cells: list[str], columns: dict[Column, int], column: Column) -> str | None:
    index = columns.get(column)
    return cells[index].strip() if index is not None and index < len(cells) else None


def _int(text: str | None) -> int | None:
    digits = (text or "").replace(",", "")
    if not re.fullmatch(rf"\d{{1,{_MAX_DIGITS}}}(\.0*)?", digits):
        return None
    return int(digits.split(".")[0])


def _amount(text: str | None, scale: float) -> float | None:
    # An empty or missing amount cell is no change; text that is no number is a malformed row.
    if not text:
        return 0.0
    return parse_amount(text, scale=scale) if re.fullmatch(r"-?[\d,]*\.?\d+", text) else None
