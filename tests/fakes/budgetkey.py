"""A Budget Key search API (``/search/<doc_type>``) serving documents built from real data.

No Budget Key response has been recorded, so the documents are built the way
Budget Key's pipelines build them (sources.md §2.2), from recorded upstream data:

* ``tenders`` — the 11 office tenders and 10 exemptions of ``tests.fakes.mrgov``;
* ``support_criteria`` — the 359 rows of the Ministry of Justice list
  (``fixtures/budgetkey/support-criteria``), with a synthetic ``publication_id``
  as Budget Key computes one for sources without ids;
* ``calls_for_bids`` — a stand-in: the same list's ``נהלים`` rows typed as calls
  (no call for bids has been recorded);
* ``national-budget-changes`` — the MoF 2014 change lines
  (``fixtures/budgetkey/budget-changes``) grouped into transactions
  ``year/leading_item-req_code``, amounts ×1000.

``GET /search/<doc_type>?q=&filter=&size=&offset=&order=`` pages them; ``q``
keeps documents whose title, description or publisher hold every term, and
``filter`` keeps those equal to each ``field: value`` (a list means any).
``app.state.calls`` records every query.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import FIXTURES
from tests.fakes.jsonapi import Failure, failure, json_response
from tests.fakes.mrgov import EXEMPTION_TYPE, exemptions, office_tenders
from watchers.parsing import HEBREW_MONTHS

CRITERIA = FIXTURES / "budgetkey" / "support-criteria" / "justice.gov.il_tmihot_criteria_2017.csv"
CHANGES = FIXTURES / "budgetkey" / "budget-changes" / "mof_changes-2014.csv"


def iso_date(ckan_text: str) -> str | None:
    """Turn ``DD.MM.YYYY`` into Budget Key's ``YYYY-MM-DD``."""
    if not ckan_text:
        return None
    day, month, year = ckan_text.split(".")
    return f"{year}-{month}-{day}"


def tender_doc(record: dict[str, str]) -> dict[str, Any]:
    """Build a ``tenders`` document from a data.gov.il record, as ``naama_scraper`` maps it."""
    tender_type = "exemptions" if record["סוג הליך"] == EXEMPTION_TYPE else "office"
    tender_id = record["מספר הליך"] or "none"
    publication_id = int(record["מספר פרסום"])
    claim = iso_date(record["תאריך אחרון להגשת השגות"])
    if claim:
        claim = f"{claim}T{record['שעה אחרונה להגשת השגות'] or '00:00'}:00"
    amount = record.get("היקף כספי", "").replace(",", "")
    return {
        "doc_id": f"tenders/{tender_type}/{publication_id}/{tender_id}",
        "tender_type": tender_type,
        "tender_type_he": record["סוג הליך"],
        "publication_id": publication_id,
        "tender_id": tender_id,
        "page_title": record["שם הליך"],
        "description": record["שם הליך"],
        "page_url": f"https://mr.gov.il/ilgstorefront/he/p/{publication_id}",
        "publisher": record["שם המשרד"],
        "publisher_unit": record["שם יחידה מפרסמת"] or None,
        "publication_date": iso_date(record["תאריך פרסום"]),
        "last_update_date": iso_date(record["תאריך עדכון"]),
        "start_date": iso_date(record["תאריך תחילת תקופת התקשרות"]),
        "end_date": iso_date(record["תאריך סיום תקופת התקשרות"]),
        "claim_date": claim,
        "decision": record["סטטוס"] or record["מהות החלטה"],
        "regulation": record["תקנה"] or None,
        "supplier": record.get("שם ספק") or record.get("שם ספק זוכה") or None,
        "subjects": ";".join(record["נושאים"].split(",")) or None,
        "volume": float(amount) if amount else None,
        "score": 1.0,
    }


def criteria_rows() -> list[dict[str, str]]:
    """Return the recorded support-criteria rows (header ``date,title,paper_type,…``)."""
    with CRITERIA.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def criteria_doc(row: dict[str, str], tender_type: str = "support_criteria") -> dict[str, Any]:
    """Build a ``support_criteria`` (or stand-in ``calls_for_bids``) document from a row."""
    seed = (row["office"] + row["title"] + row["date"]).encode()
    # Budget Key's calculate_publication_id: factor·10⁸ + a hash of publisher, title, date.
    publication_id = 8 * 10**8 + int(hashlib.md5(seed).hexdigest()[:8], 16) % 10**8
    doc_type = "calls_for_bids" if tender_type == "call_for_bids" else "support_criteria"
    return {
        "doc_id": f"{doc_type}/{tender_type}/{publication_id}/none",
        "tender_type": tender_type,
        "tender_type_he": "קול קורא" if tender_type == "call_for_bids" else "מבחן תמיכה",
        "publication_id": publication_id,
        "tender_id": "none",
        "page_title": row["title"],
        "description": row["expected_purpose"],
        "page_url": row["pdf_url"],
        "publisher": row["office"],
        "start_date": row["date"] or None,
        "claim_date": None,
        "decision": "פתוח",
        "target_audience": row["expected_purpose"],
        "budget_codes": [],
    }


def change_docs(pending: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Group the 2014 change lines into transactions; ids in ``pending`` are still pending."""
    with CHANGES.open(encoding="utf-8", newline="") as file:
        lines = list(csv.reader(file))[1:]
    groups: dict[str, list[list[str]]] = defaultdict(list)
    for line in lines:
        groups[f"{line[0]}/{int(line[1]):02d}-{int(line[2]):03d}"].append(line)
    return [_transaction(tid, group, tid in pending) for tid, group in groups.items()]


def _transaction(transaction_id: str, lines: list[list[str]], is_pending: bool) -> dict[str, Any]:
    changes: list[dict[str, Any]] = [
        {
            "budget_code": line[9].zfill(8),
            "budget_title": line[10],
            "net_expense_diff": _k(line[11]),
        }
        for line in lines
    ]
    moves = [[c["budget_code"], c["net_expense_diff"], c["budget_title"]] for c in changes]
    return {
        "doc_id": f"national-budget-changes/{transaction_id}",
        "transaction_id": transaction_id,
        "year": int(lines[0][0]),
        "leading_item": int(lines[0][1]),
        "req_code": int(lines[0][2]),
        "req_title": [line[3] for line in lines],
        "change_title": [line[5] for line in lines],
        "change_type_name": [line[7] for line in lines],
        "committee_id": [line[8] for line in lines],
        "budget_code_title": [line[10] for line in lines],
        "date": [_hebrew_date(line[16]) for line in lines],
        "pending": [is_pending for _ in lines],
        "is_pending": is_pending,
        "net_expense_diff": sum(c["net_expense_diff"] for c in changes),
        "change_list": changes,
        "summary": {
            "title": lines[0][3],
            "kind": lines[0][7],
            "from": [m for m in moves if m[1] < 0],
            "to": [m for m in moves if m[1] >= 0],
        },
    }


def _k(text: str) -> float:
    """Thousands of ₪ (``"6,830"``) to ₪."""
    return float(text.replace(",", "") or 0) * 1000


def _hebrew_date(text: str) -> str | None:
    """``27-ינו-14`` to ``2014-01-27``."""
    if not text:
        return None
    day, month, year = text.split("-")
    return f"20{year}-{HEBREW_MONTHS[month]:02d}-{int(day):02d}"


def all_docs(pending: frozenset[str] = frozenset()) -> dict[str, list[dict[str, Any]]]:
    """Return every doc type's documents."""
    rows = criteria_rows()
    return {
        "tenders": [tender_doc(r) for r in [*office_tenders(), *exemptions()]],
        "support_criteria": [criteria_doc(r) for r in rows],
        "calls_for_bids": [
            criteria_doc(r, "call_for_bids") for r in rows if r["paper_type"] == "נהלים"
        ],
        "national-budget-changes": change_docs(pending),
    }


def build_app(
    docs: dict[str, list[dict[str, Any]]] | None = None,
    *,
    fail: Failure | None = None,
    fail_at_offset: int = 0,
    total: int | None = None,
    ignore_size_above: int | None = None,
    answer: Any = None,
) -> Starlette:
    """Build the search server.

    ``fail`` breaks pages from ``fail_at_offset`` on; ``total`` overrides
    ``total_overall``; ``ignore_size_above`` caps ``size`` as a server limit would; ``answer``, when
    given, is served as the JSON of every search instead.
    """
    served = all_docs() if docs is None else docs
    calls: list[dict[str, str]] = []

    async def search(request: Request) -> Response:
        query = dict(request.query_params)
        calls.append(query)
        if answer is not None:
            return json_response(answer)
        found = _matching(served.get(request.path_params["doc_type"], []), query)
        size = int(query.get("size", 10))
        size = min(size, ignore_size_above) if ignore_size_above else size
        offset = int(query.get("offset", 0))
        page = found[offset : offset + size]
        payload = {
            "search_counts": {
                "_current": {"total_overall": len(found) if total is None else total}
            },
            "search_results": [{"source": doc, "type": "x", "score": 1.0} for doc in page],
        }
        if fail and offset >= fail_at_offset:
            return failure(fail, payload)
        return json_response(payload)

    app = Starlette(routes=[Route("/search/{doc_type}", search)])
    app.state.calls = calls
    return app


def _matching(docs: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    terms = query.get("q", "").split()
    filters: dict[str, Any] = json.loads(query.get("filter") or "{}")

    def keep(doc: dict[str, Any]) -> bool:
        text = " ".join(str(doc.get(f) or "") for f in ("page_title", "description", "publisher"))
        if not all(term in text for term in terms):
            return False
        for field, wanted in filters.items():
            allowed = wanted if isinstance(wanted, list) else [wanted]
            if doc.get(field) not in allowed:
                return False
        return True

    return [doc for doc in docs if keep(doc)]
