"""Budget Key's search ``filter``, evaluated the way apies and Elasticsearch evaluate it.

Budget Key's search is apies (``OpenBudget/budgetkey-api requirements.txt``: ``apies>=1.13.1``);
the filter is read by ``dataspot/apies apies/query.py`` ``_process_complex`` and
``parse_filter_op`` (v1.13.1) and run by Elasticsearch:

* the text is JSON (``{…}``; a bare ``a: 1`` gets braces); a list of objects means any of
  them (a ``should``); within an object every key must hold; ``_type`` limits an object
  to some doc types, and a doc type no object names is not searched at all;
* a key is ``field`` or ``field__op``; what follows ``#`` is dropped, so one field can take
  two conditions (``amount__gt``, ``amount__lt#2``);
* no op: ``term`` (a list value: ``terms``, any of them); on an array field a term matches
  any element; ``not``: the same term must not match (a missing field does not match);
* ``like``: ``match``, any word of the value (Elasticsearch's default operator is OR);
* ``gt gte lt lte``: ``range``; a date takes date maths (``now``, ``now-1w``, ``now/d``,
  ``2017-07-01||+1M``; ``m`` is minutes, ``M`` months); a range on an array field matches
  if any element is in it;
* ``exists`` / ``empty``: the field has a value / has none (``null`` and ``[]`` have none);
* ``all``: ``terms_set`` wanting every listed value; ``bounded``: ``geo_bounding_box``
  with ``[[left lon, top lat], [right lon, bottom lat]]``;
* ``eq`` becomes ``range: {eq: …}``, which Elasticsearch refuses (``SearchFailed``).

Elasticsearch reads a stored date with a ``Z`` as UTC, so a range on ``claim_date``
compares Budget Key's naive Israel time as if it were UTC, as the real one does.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

OPS = ("gt", "gte", "lt", "lte", "eq", "not", "like", "bounded", "all", "exists", "empty")

_MATH = re.compile(r"([+-])(\d+)([yMwdhHms])")
_ROUND = re.compile(r"/([yMwdhHms])$")

Test = Callable[[dict[str, Any]], bool]


class SearchFailed(Exception):
    """Elasticsearch refused the query; apies' ``msearch`` then reports no hits at all."""


def parse(text: str | None) -> list[dict[str, Any]]:
    """Decode a ``filter`` parameter as apies does (JSON errors propagate, as there)."""
    if not text:
        return []
    if not (text.startswith("[") and text.endswith("]")) and not text.startswith("{"):
        text = "{" + text + "}"
    decoded = json.loads(text)
    return [decoded] if isinstance(decoded, dict) else list(decoded)


def searched(groups: list[dict[str, Any]], doc_type: str) -> list[dict[str, Any]] | None:
    """The filter objects that apply to ``doc_type``; ``None`` if the type is not searched."""
    if not groups:
        return []
    mine = [g for g in groups if doc_type in _types(g.get("_type", doc_type))]
    return mine or None


def matches(doc: dict[str, Any], groups: list[dict[str, Any]], now: datetime) -> bool:
    """Say whether ``doc`` passes the filter objects (any of them); no objects pass all."""
    if not groups:
        return True
    return any(all(_test(k, v, now)(doc) for k, v in g.items() if k != "_type") for g in groups)


def _types(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def _test(key: str, value: Any, now: datetime) -> Test:
    """Build one clause's test, as ``parse_filter_op`` builds its query."""
    parts = key.split("#")[0].split("__")
    op = parts[-1] if len(parts) > 1 and parts[-1] in OPS else None
    field = "__".join(parts[:-1]) if op else "__".join(parts)
    if op == "not":
        term = _term(field, value)
        return lambda doc: not term(doc)
    if op is None:
        return _term(field, value)
    if op == "eq":
        raise SearchFailed("[range] query does not support [eq]")
    if op in ("exists", "empty"):
        wanted = op == "exists"
        return lambda doc: bool(_values(doc, field)) is wanted
    builders = {"like": _like, "all": _all, "bounded": _bounded}
    if op in builders:
        return builders[op](field, value)
    return _range(field, op, value, now)


def _term(field: str, value: Any) -> Test:
    wanted = [_key(v) for v in (value if isinstance(value, list) else [value])]
    return lambda doc: any(_key(v) in wanted for v in _values(doc, field))


def _like(field: str, value: Any) -> Test:
    words = set(re.findall(r"\w+", str(value).casefold()))
    return lambda doc: bool(
        words & {w for v in _values(doc, field) for w in re.findall(r"\w+", str(v).casefold())}
    )


def _all(field: str, value: Any) -> Test:
    if not isinstance(value, list):
        raise SearchFailed("[terms_set] query needs an array of terms")
    wanted = {_key(v) for v in value}
    return lambda doc: wanted <= {_key(v) for v in _values(doc, field)}


def _bounded(field: str, value: Any) -> Test:
    try:
        (left, top), (right, bottom) = value
    except (TypeError, ValueError) as exc:
        raise SearchFailed(f"[geo_bounding_box] malformed box {value!r}") from exc

    def inside(doc: dict[str, Any]) -> bool:
        points = [p for p in (_point(v) for v in _raw(doc, field)) if p]
        return any(left <= lon <= right and bottom <= lat <= top for lon, lat in points)

    return inside


def _range(field: str, op: str, value: Any, now: datetime) -> Test:
    if isinstance(value, str) and (value.startswith("now") or "||" in value or _date(value)):
        low, high = _date_bounds(value, now)
        return lambda doc: any(
            _in_dates(d, low, high, op)
            for d in (_date(v) for v in _values(doc, field))
            if d is not None
        )
    if isinstance(value, int | float) or _number(value) is not None:
        limit = float(value)
        return lambda doc: any(
            _compare(n, limit, op)
            for n in (_number(v) for v in _values(doc, field))
            if n is not None
        )
    return lambda doc: any(_compare(str(v), str(value), op) for v in _values(doc, field))


def _in_dates(at: datetime, low: datetime, high: datetime, op: str) -> bool:
    """Compare with a date, or with a rounded interval ``[low, high)`` as ES does.

    ``gt`` and ``lte`` round up to the interval's end, ``gte`` and ``lt`` down to its start.
    """
    if low == high:
        return _compare(at, low, op)
    return {"gt": at >= high, "gte": at >= low, "lt": at < low, "lte": at < high}[op]


def _compare(a: Any, b: Any, op: str) -> bool:
    return bool({"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op])


def _date_bounds(text: str, now: datetime) -> tuple[datetime, datetime]:
    """Evaluate date maths; with ``/unit`` rounding, the interval's start and next start."""
    if text.startswith("now"):
        anchor, math = "now", text[3:]
    else:
        anchor, _, math = text.partition("||")
    at = now.astimezone(UTC) if anchor == "now" else _date(anchor)
    if at is None:
        raise SearchFailed(f"failed to parse date field [{text}]")
    rounding = _ROUND.search(math)
    math = _ROUND.sub("", math)
    if _MATH.sub("", math):
        raise SearchFailed(f"failed to parse date maths [{text}]")
    for sign, amount, unit in _MATH.findall(math):
        at = _shift(at, unit, int(amount) * (1 if sign == "+" else -1))
    if not rounding:
        return at, at
    start = _floor(at, rounding[1])
    return start, _shift(start, rounding[1], 1)


def _shift(at: datetime, unit: str, amount: int) -> datetime:
    if unit in "yM":
        months = at.month - 1 + amount * (12 if unit == "y" else 1)
        year, month = at.year + months // 12, months % 12 + 1
        day = min(at.day, calendar.monthrange(year, month)[1])
        return at.replace(year=year, month=month, day=day)
    seconds = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}[unit]
    return at + timedelta(seconds=seconds * amount)


def _floor(at: datetime, unit: str) -> datetime:
    if unit == "y":
        return datetime(at.year, 1, 1, tzinfo=UTC)
    if unit == "M":
        return datetime(at.year, at.month, 1, tzinfo=UTC)
    if unit == "w":  # Elasticsearch's weeks start on Monday
        return _floor(at, "d") - timedelta(days=at.weekday())
    if unit == "d":
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in "hH":
        return at.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return at.replace(second=0, microsecond=0)
    return at.replace(microsecond=0)


def _date(value: Any) -> datetime | None:
    """A stored or filter date as Elasticsearch reads it: ``Z`` and naive times are UTC."""
    if not isinstance(value, str):
        return None
    if m := re.fullmatch(r"(\d{2})/(\d{2})/(\d{4})", value):
        value = f"{m[3]}-{m[2]}-{m[1]}"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _key(value: Any) -> Any:
    """What a term compares: numbers by value, booleans as ES writes them, text as is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    number = _number(value) if not isinstance(value, str) or value.strip() else None
    return number if number is not None else value


def _raw(doc: dict[str, Any], field: str) -> list[Any]:
    """The values at a dotted path, through objects and lists of objects."""
    found: list[Any] = [doc]
    for part in field.split("."):
        found = [
            v.get(part)
            for node in found
            for v in (node if isinstance(node, list) else [node])
            if isinstance(v, dict)
        ]
    return [v for v in found if v is not None]


def _values(doc: dict[str, Any], field: str) -> list[Any]:
    """The leaf values at a path, arrays flattened; ``null`` elements dropped."""
    leaves: list[Any] = []
    for value in _raw(doc, field):
        leaves.extend(v for v in (value if isinstance(value, list) else [value]) if v is not None)
    return leaves


def _point(value: Any) -> tuple[float, float] | None:
    """A geo point as ``(lon, lat)``: ``[lon, lat]``, ``{"lat", "lon"}`` or ``"lat,lon"``."""
    if isinstance(value, list) and len(value) == 2:
        return float(value[0]), float(value[1])
    if isinstance(value, dict) and {"lat", "lon"} <= value.keys():
        return float(value["lon"]), float(value["lat"])
    if isinstance(value, str) and value.count(",") == 1:
        lat, lon = value.split(",")
        return float(lon), float(lat)
    return None
