"""Parsers for the dates, amounts and text that government sources publish.

Naive dates mean Asia/Jerusalem for Israeli sources (mr.gov.il, data.gov.il,
the Ministry of Finance) and UTC for CKAN timestamps; the caller says which.
A value that cannot be parsed is ``None``, never "now"; no text makes these
parsers raise (a year 1 or 9999 that overflows UTC, ``25:99``, a number too
large for a float).
"""

from __future__ import annotations

import html
import math
import re
from datetime import UTC, datetime, time, tzinfo
from zoneinfo import ZoneInfo

#: Israel's zone: the meaning of naive dates in Israeli government files.
ISRAEL = ZoneInfo("Asia/Jerusalem")

#: Hebrew month abbreviations as the Ministry of Finance writes them (27-ינו-14).
HEBREW_MONTHS = {
    "ינו": 1, "פבר": 2, "מרץ": 3, "מרס": 3, "אפר": 4, "מאי": 5, "יונ": 6, "יוני": 6,
    "יול": 7, "יולי": 7, "אוג": 8, "ספט": 9, "אוק": 10, "נוב": 11, "דצמ": 12,
}  # fmt: skip

_DMY = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{2,4})$")
_HM = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_HEBREW_DATE = re.compile(r"^(\d{1,2})-([\u0590-\u05ff]+)-(\d{2,4})$")


def parse_date(text: str | None, *, zone: tzinfo = ISRAEL) -> datetime | None:
    """Parse the date formats Israeli sources use into an aware UTC datetime.

    Accepts ``DD.MM.YYYY``, ``DD/MM/YYYY``, ``DD-MM-YY``, time-first
    ``13:00 25/07/2017``, time-last ``25/07/2017 13:00``, Hebrew-month
    ``27-ינו-14`` and ISO 8601 (naive ISO is read in ``zone``).
    """
    if not text or not (text := text.strip()):
        return None
    parts = text.split()
    clock = next((p for p in parts if _HM.match(p)), None)
    day_text = next((p for p in parts if p is not clock), "")
    day = _parse_day(day_text)
    if day is None:
        return _parse_iso(text, zone)
    try:
        at = time(0, 0)
        if clock and (m := _HM.match(clock)):
            at = time(int(m[1]), int(m[2]), int(m[3] or 0))
        return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):  # 25:99, or a day at the ends of the calendar
        return None


def _parse_day(text: str) -> datetime | None:
    if m := _DMY.match(text):
        day, month, year = int(m[1]), int(m[2]), _year(m[3])
    elif m := _HEBREW_DATE.match(text):
        month_number = HEBREW_MONTHS.get(m[2])
        if month_number is None:
            return None
        day, month, year = int(m[1]), month_number, _year(m[3])
    else:
        return None
    try:
        return datetime(year, month, day)
    except ValueError:
        return None


def _year(text: str) -> int:
    year = int(text)
    return year + 2000 if year < 100 else year


def _parse_iso(text: str, zone: tzinfo) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):  # 0001-01-01 in Israel time is before year 1 UTC
        return None


def parse_amount(text: str | int | float | None, *, scale: float = 1.0) -> float | None:
    """Parse ``"6,830"``, ``-95``, ``"₪ 15,191"`` into a float times ``scale``.

    Returns ``None`` for empty or unparseable text, and for what is no finite
    amount (``NaN``, ``10**400``). Zero stays zero; whether zero means "unknown"
    is the source's call. A value of another type (a list) raises: the record is
    malformed.
    """
    if text is None:
        return None
    if isinstance(text, int | float):
        return _finite(text, scale)
    cleaned = re.sub(r"[^\d.\-]", "", text.replace("\u2212", "-"))
    if not cleaned or cleaned in {"-", "."}:
        return None
    return _finite(cleaned, scale)


def _finite(value: str | int | float, scale: float) -> float | None:
    try:
        amount = float(value) * scale
    except (ValueError, OverflowError):
        return None
    return amount if math.isfinite(amount) else None


def clean_text(text: str | None) -> str:
    """Unescape HTML entities, drop tags, and collapse white space."""
    if not text:
        return ""
    text = re.sub(r"<[^>]+>", " ", html.unescape(text))
    return re.sub(r"\s+", " ", text).strip()
