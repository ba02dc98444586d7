"""Budget Key search documents as ``Item`` fields.

The shapes are the ones Budget Key's pipelines index (``OpenBudget/budgetkey-data-pipelines``,
paths under ``datapackage_pipelines_budgetkey/``; the shared docs' upstream.md, "Budget Key
search API"):

* A tender's ``page_title`` is a snippet, "publisher: kind - description"
  (``pipelines/procurement/tenders/extra_values.py``; the indexer's
  ``page-title-pattern: '{snippet}'``), so its title is ``description``. Calls for bids and
  support criteria have a real ``page_title``.
* Datetimes are naive Israel time written with a ``Z`` (``processors/dump_to_es.py`` formats
  every datetime ``%Y-%m-%dT%H:%M:%SZ``; ``procurement/tenders/naama_scraper.py`` builds
  ``claim_date`` from the register's local date and hour). The ``Z`` is a lie: it is dropped
  and the time read in Asia/Jerusalem.
* ``volume`` is in ``source_currency`` (the register's ``מטבע``); ``contract_volume``, what
  was paid under the tender's contracts, is in shekels.
* Tags: ``subject_list_keywords`` (a list; the only one calls for bids have,
  ``procurement/calls_for_bids/pipeline-spec.yaml``) and tenders' ``;``-joined ``subjects``.
* A budget change lists its lines in ``change_list`` (``budget_code_title`` ``"00015101:title"``,
  ``change_id``, ``*_diff`` amounts in ₪; there is no ``budget_code``) and sums them per
  section in ``summary.from`` / ``summary.to`` as ``[code[:4], amount, title]``
  (``budget/national/changes/processed/{filter_reserve,fix_values,summarize}.py``).

Budget codes are digits only, ``00`` + section/domain/programme/item pairs (``00204001``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from agent.models import Kind
from watchers.parsing import clean_text, parse_amount, parse_date

#: Each doc type's kind (a tender of type ``exemptions`` is an exemption).
KINDS: dict[str, Kind] = {
    "tenders": Kind.TENDER,
    "calls_for_bids": Kind.CALL_FOR_BIDS,
    "support_criteria": Kind.SUPPORT_CRITERIA,
    "national-budget-changes": Kind.BUDGET_CHANGE,
}

#: ``source_currency`` as the registers write it (after dropping quotes and spaces).
_CURRENCY_NAMES = {
    "שח": "ILS", "שקל": "ILS", "שקלחדש": "ILS", "₪": "ILS", "NIS": "ILS",
    "דולר": "USD", "$": "USD", "יורו": "EUR", "אירו": "EUR", "€": "EUR",
}  # fmt: skip


def publication_fields(doc: dict[str, Any], doc_type: str) -> dict[str, Any]:
    """Map a tender, call for bids or support-criteria document to ``Item`` fields."""
    tender_type = text(doc.get("tender_type")) or doc_type
    key = text(doc.get("doc_id")) or "/".join(
        [doc_type, tender_type, text(doc.get("publication_id")) or "none",
         text(doc.get("tender_id")) or "none"]
    )  # fmt: skip
    description = text(doc.get("description"))
    if doc_type == "tenders":  # page_title is only "publisher: kind - description"
        title = description or text(doc.get("page_title"))
    else:
        title = text(doc.get("page_title")) or description
    amount, currency = _volume(doc)
    codes = [*_list(doc.get("budget_codes")), *_resolved_codes(doc.get("resolved_budget_codes"))]
    return {
        "kind": Kind.EXEMPTION if tender_type == "exemptions" else KINDS[doc_type],
        "key": key,
        "title": title,
        "description": "" if description == title else description,
        "publisher": text(doc.get("publisher")) or None,
        "publishing_unit": text(_first(doc, "publishing_unit", "publisher_unit")) or None,
        "amount": amount,
        "currency": currency,
        "published_at": local_time(_first(doc, "publication_date", "start_date")),
        "deadline": local_time(doc.get("claim_date")),
        "status": text(_first(doc, "decision", "simple_decision")) or None,
        "budget_codes": budget_codes(codes),
        "tags": _unique(
            [*_list(doc.get("subject_list_keywords")), *text(doc.get("subjects")).split(";")]
        ),
    }


def budget_change_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """Map a ``national-budget-changes`` transaction to ``Item`` fields."""
    transaction_id = text(doc.get("transaction_id"))
    summary: dict[str, Any] = doc["summary"] if isinstance(doc.get("summary"), dict) else {}
    lines = [line for line in _list(doc.get("change_list")) if isinstance(line, dict)]
    moves = [m for m in [*_list(summary.get("from")), *_list(summary.get("to"))] if _is_move(m)]
    titles = [text(t) for t in _list(doc.get("req_title"))]
    dates = [d for d in (local_time(t) for t in _list(doc.get("date"))) if d]
    kinds = [*_list(doc.get("change_type_name")), *_list(doc.get("change_title"))]
    amount = parse_amount(doc.get("net_expense_diff"))
    if amount is None and lines:
        amount = sum(parse_amount(line.get("net_expense_diff")) or 0.0 for line in lines)
    if amount is None:
        amount = parse_amount(doc.get("amount"))
    return {
        "kind": Kind.BUDGET_CHANGE,
        "key": text(doc.get("doc_id")) or f"national-budget-changes/{transaction_id}",
        "title": text(summary.get("title")) or next((t for t in titles if t), transaction_id),
        "description": text(doc.get("explanation")) or _describe(lines) or _describe_moves(moves),
        "amount": amount,
        "currency": "ILS" if amount is not None else None,
        "published_at": max(dates, default=None),
        "status": "pending" if doc.get("is_pending") else "approved",
        "budget_codes": _change_codes(lines, moves, doc.get("budget_code_title")),
        "tags": _unique(kinds),
    }


def local_time(value: Any) -> datetime | None:
    """Read a Budget Key date or datetime as Israel time, ignoring the ``Z`` it is dumped with."""
    return parse_date(text(value).removesuffix("Z"))


def budget_codes(values: Iterable[Any]) -> tuple[str, ...]:
    """Normalise and de-duplicate budget codes, keeping their order."""
    codes = (_budget_code(v) for v in values)
    return tuple(dict.fromkeys(code for code in codes if code))


def text(value: Any) -> str:
    """Clean text of any scalar; empty for ``None``."""
    return "" if value is None else clean_text(str(value))


def _volume(doc: dict[str, Any]) -> tuple[float | None, str | None]:
    """The tender's amount and currency; 0 is what the registers write when it is not known."""
    if volume := parse_amount(doc.get("volume")):
        return volume, _currency(doc.get("source_currency"))
    if paid := parse_amount(doc.get("contract_volume")):
        return paid, "ILS"  # contract spending comes from the Treasury, in shekels
    return None, None


def _currency(value: Any) -> str:
    """ISO code of a ``source_currency`` (``ILS``, ``ש"ח``, ``דולר``…); ILS only when absent."""
    name = re.sub(r"[\s\"'״׳]", "", text(value)).upper()
    return _CURRENCY_NAMES.get(name, name) or "ILS"


def _change_codes(
    lines: list[dict[str, Any]], moves: list[list[Any]], titles: Any
) -> tuple[str, ...]:
    """The lines' programme codes; a summary section only when none of its lines is listed."""
    named = [text(line.get("budget_code_title")) for line in lines] + [
        text(t) for t in _list(titles)
    ]
    codes = list(budget_codes(name.split(":", 1)[0] for name in named))
    sections = budget_codes(move[0] for move in moves)
    return (*codes, *(s for s in sections if not any(c.startswith(s) for c in codes)))


def _describe(lines: list[dict[str, Any]]) -> str:
    """Render the lines as ``00015101 נשיא המדינה: +6,830,000 ₪``, one per programme."""
    totals: dict[str, float] = {}
    for line in lines:
        name = text(line.get("budget_code_title"))
        totals[name] = totals.get(name, 0.0) + (parse_amount(line.get("net_expense_diff")) or 0.0)
    return "\n".join(_line(*name.partition(":")[::2], amount) for name, amount in totals.items())


def _describe_moves(moves: list[list[Any]]) -> str:
    """Render the summary's ``[[section, amount, title], …]`` the same way, once per section."""
    shown = {text(move[0]): move for move in moves}  # a zero sum is in both from and to
    return "\n".join(
        _line(code, text(move[2]) if len(move) > 2 else "", parse_amount(move[1]) or 0.0)
        for code, move in shown.items()
    )


def _line(code: str, title: str, amount: float) -> str:
    shown_title = "" if title == code else title
    return f"{_budget_code(code) or ''} {shown_title}: {amount:+,.0f} ₪".strip()


def _is_move(value: Any) -> bool:
    return isinstance(value, list) and len(value) >= 2


def _resolved_codes(resolved: Any) -> list[Any]:
    return [r.get("code") for r in _list(resolved) if isinstance(r, dict)]


def _budget_code(value: Any) -> str | None:
    """Normalise ``20.40.01``, ``0020400`` or ``15101`` to ``00`` + digit pairs."""
    digits = re.sub(r"\D", "", text(value))
    if not digits:
        return None
    if len(digits) % 2:
        digits = "0" + digits  # MoF drops the leading zero of a one-digit section
    return digits if digits.startswith("00") else "00" + digits


def _first(doc: dict[str, Any], *names: str) -> Any:
    return next((doc[n] for n in names if doc.get(n) not in (None, "")), None)


def _list(value: Any) -> list[Any]:
    """A list field as a list: ``None`` is empty, a lone value a list of one."""
    if value is None:
        return []
    if isinstance(value, dict):
        raise TypeError(f"an object where a list was expected: {value!r:.80}")
    return value if isinstance(value, list) else [value]


def _unique(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in (text(v) for v in values) if t))
