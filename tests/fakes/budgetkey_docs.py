"""Budget Key search documents built from real recorded data, as Budget Key builds them.

No Budget Key response has been recorded, so the documents are built the way Budget Key's
pipelines build them, from recorded upstream data (the shared docs' upstream.md, "Budget Key
search API"; ``BK`` is ``OpenBudget/budgetkey-data-pipelines``, paths under
``datapackage_pipelines_budgetkey/``):

* ``tenders`` — the 11 office tenders and 10 exemptions of ``tests.fakes.mrgov``, mapped
  as BK ``procurement/tenders/naama_scraper.py`` maps the register and
  ``extra_values.py`` finishes them: ``page_title`` is the snippet "publisher: kind -
  description" (indexer ``page-title-pattern: '{snippet}'``), ``subjects`` ``;``-joined
  and ``subject_list_keywords`` split from it (``split_subject_list.py``), ``volume`` in
  ``source_currency``, ``claim_date`` a naive Israel datetime;
* ``support_criteria`` — the 359 rows of the Ministry of Justice list
  (``fixtures/budgetkey/support-criteria``), with a synthetic ``publication_id`` as BK
  ``common/publication_id.py`` computes one for sources without ids;
* ``calls_for_bids`` — a stand-in: the same list's ``נהלים`` rows typed as calls (no call for
  bids has been recorded), with the fields of BK ``calls_for_bids/pipeline-spec.yaml``;
* ``national-budget-changes`` — the MoF 2014 change lines (``fixtures/budgetkey/budget-changes``)
  grouped into transactions ``year/leading_item-req_code`` as BK
  ``budget/national/changes/processed/pipeline-spec.yaml`` does: ``budget_code_title``
  ``"00015101:title"`` (``filter_reserve.py``), ``change_list`` items with ``change_id`` and
  the ``*_diff`` amounts in ₪ (``fix_values.py``), ``summary.from``/``to`` as
  ``[code[:4], amount, section title]`` (``summarize.py``, section titles from the recorded
  2013–2014 budget book).

Every document carries what the indexer adds (BK ``generator.py``, ``manage-revisions.py``,
``set-revisions.py``, ``add_doc_id.py``): ``doc_id``, ``__last_modified_at`` and its kin.
BK ``processors/dump_to_es.py`` writes every datetime ``%Y-%m-%dT%H:%M:%SZ``, with a ``Z``
although the time is naive.

``tests.fakes.budgetkey`` serves them.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from typing import Any

from tests.conftest import FIXTURES
from tests.fakes.mrgov import EXEMPTION_TYPE, exemptions, office_tenders
from watchers.parsing import HEBREW_MONTHS

CRITERIA = FIXTURES / "budgetkey" / "support-criteria" / "justice.gov.il_tmihot_criteria_2017.csv"
CHANGES = FIXTURES / "budgetkey" / "budget-changes" / "mof_changes-2014.csv"
BUDGET = FIXTURES / "budgetkey" / "budget-items" / "mof_budget20132014.csv"

#: When the fake's documents were last indexed, as ``dump_to_es`` writes it.
INDEXED_AT = "2026-11-22T03:00:00Z"

#: ``extra_values.py``'s kinds, in the tender snippet.
TENDER_KINDS = {"central": "מכרז מרכזי", "office": "מכרז משרדי", "exemptions": "רכש פטור ממכרז"}


def iso_date(ckan_text: str) -> str | None:
    """Turn ``DD.MM.YYYY`` into the ``YYYY-MM-DD`` of a date field."""
    if not ckan_text:
        return None
    day, month, year = ckan_text.split(".")
    return f"{year}-{month}-{day}"


def indexed(doc: dict[str, Any], at: str = INDEXED_AT) -> dict[str, Any]:
    """Stamp ``doc`` as the indexer does when it sees it new or changed at ``at``."""
    doc.update({"__last_modified_at": at, "__last_updated_at": at, "__created_at": at})
    doc.update({f"rev{k[1:]}": at[:10] for k in ("__last_modified_at", "__created_at")})
    return doc


def tender_doc(record: dict[str, str]) -> dict[str, Any]:
    """Build a ``tenders`` document from a data.gov.il record, as Budget Key does."""
    tender_type = "exemptions" if record["סוג הליך"] == EXEMPTION_TYPE else "office"
    tender_id = record["מספר הליך"] or "none"
    publication_id = int(record["מספר פרסום"])
    claim = iso_date(record["תאריך אחרון להגשת השגות"])
    if claim:  # naive Israel time, dumped with a Z
        claim = f"{claim}T{record['שעה אחרונה להגשת השגות'] or '00:00'}:00Z"
    publisher = record["שם המשרד"] or "מינהל הרכש הממשלתי"
    description = record["שם הליך"]
    subjects = ";".join(s.strip() for s in record["נושאים"].split(",")) if record["נושאים"] else ""
    amount = record.get("היקף כספי", "").replace(",", "")
    decision = record["מהות החלטה"] or record["סטטוס"]
    return indexed({
        "doc_id": f"tenders/{tender_type}/{publication_id}/{tender_id}",
        "tender_type": tender_type,
        "tender_type_he": record["סוג הליך"],
        "publication_id": publication_id,
        "tender_id": tender_id,
        "page_title": f"{publisher}: {TENDER_KINDS[tender_type]} - {description}",
        "snippet": f"{publisher}: {TENDER_KINDS[tender_type]} - {description}",
        "description": description,
        "page_url": f"https://mr.gov.il/ilgstorefront/he/p/{publication_id}",
        "publisher": publisher,
        "publisher_unit": record["שם יחידה מפרסמת"] or None,
        "publication_date": iso_date(record["תאריך פרסום"]),
        "last_update_date": iso_date(record["תאריך עדכון"]),
        "start_date": iso_date(record["תאריך תחילת תקופת התקשרות"]),
        "end_date": iso_date(record["תאריך סיום תקופת התקשרות"]),
        "claim_date": claim,
        "status": record["סטטוס"] or None,
        "decision": decision or None,
        "simple_decision": decision or None,  # extra_values.py when its tables have no row
        "regulation": record["תקנה"] or None,
        "reason": record["תקנה"] or None,
        "supplier": record.get("שם ספק") or record.get("שם ספק זוכה") or None,
        "subjects": subjects,
        "subject_list_keywords": [s.strip() for s in subjects.split(";")] if subjects else [],
        "volume": float(amount) if amount else None,
        "source_currency": record["מטבע"] or None,
        "contract_volume": 0,
        "awardees": [],
        "documents": [],
        "score": 1.0,
    })  # fmt: skip


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
    return indexed({
        "doc_id": f"{doc_type}/{tender_type}/{publication_id}/none",
        "tender_type": tender_type,
        "tender_type_he": "קול קורא" if tender_type == "call_for_bids" else "מבחן תמיכה",
        "publication_id": publication_id,
        "tender_id": "none",
        "page_title": row["title"],
        "description": row["expected_purpose"],
        "page_url": row["pdf_url"],
        "publisher": row["office"],
        "publishing_unit": None,
        "start_date": row["date"] or None,
        "claim_date": None,
        "decision": "פתוח",
        "target_audience": row["expected_purpose"],
        "subject_list_keywords": [],
        "budget_codes": [],
        "documents": [],
    })  # fmt: skip


def section_titles() -> dict[str, str]:
    """The sections of the recorded budget book, ``{"0001": "נשיא המדינה ולשכתו"}``."""
    with BUDGET.open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))[2:]
    return {f"00{row[0]}": row[1] for row in rows if row[0]}


def change_docs(pending: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Group the 2014 change lines into transactions; ids in ``pending`` are still pending."""
    with CHANGES.open(encoding="utf-8", newline="") as file:
        lines = list(csv.reader(file))[1:]
    groups: dict[str, list[list[str]]] = defaultdict(list)
    for line in lines:
        groups[f"{line[0]}/{int(line[1]):02d}-{int(line[2]):03d}"].append(line)
    titles = section_titles()
    return [_transaction(tid, group, tid in pending, titles) for tid, group in groups.items()]


#: The change file's amount columns, in order from ``הוצאות נטו`` (thousands of ₪).
DIFFS = (
    "net_expense_diff", "gross_expense_diff", "allocated_income_diff",
    "commitment_limit_diff", "personnel_max_diff",
)  # fmt: skip


def _transaction(
    transaction_id: str, lines: list[list[str]], is_pending: bool, titles: dict[str, str]
) -> dict[str, Any]:
    changes: list[dict[str, Any]] = [
        {
            "budget_code_title": f"{line[9].zfill(8)}:{line[10]}",
            "change_id": f"{int(line[1]):02d}-{int(line[2]):03d}",
            **{name: _k(line[11 + i]) for i, name in enumerate(DIFFS)},
        }
        for line in lines
    ]
    return indexed({
        "doc_id": f"national-budget-changes/{transaction_id}",
        "transaction_id": transaction_id,
        "year": int(lines[0][0]),
        "leading_item": int(lines[0][1]),
        "req_code": int(lines[0][2]),
        "req_title": _set(line[3] for line in lines),
        "change_code": _set(int(line[4]) for line in lines),
        "change_title": _set(line[5] for line in lines),
        "change_type_id": _set(int(line[6]) for line in lines),
        "change_type_name": _set(line[7] for line in lines),
        "committee_id": _set(int(line[8] or 0) for line in lines),
        "budget_code_title": _set(c["budget_code_title"] for c in changes),
        **{name: sum(c[name] for c in changes) for name in DIFFS},
        "amount": sum(sum(c[name] for name in DIFFS[:4]) for c in changes),
        "date": _set(_hebrew_date(line[16]) for line in lines),
        "pending": [is_pending],
        "is_pending": is_pending,
        "change_list": changes,
        "explanation": None,
        "summary": _summary(lines, changes, titles),
    })  # fmt: skip


def _summary(
    lines: list[list[str]], changes: list[dict[str, Any]], titles: dict[str, str]
) -> dict[str, Any]:
    """``summarize.py``: per section (``code[:4]``) the sum of four diffs, largest first."""
    roofs: dict[str, float] = defaultdict(float)
    for change in changes:
        code = change["budget_code_title"][:4]
        roofs[code] += sum(change[name] for name in DIFFS[:4])
    ordered = sorted(roofs.items(), key=lambda r: -abs(r[1]))
    moves: list[list[Any]] = [[code, amount, titles.get(code, code)] for code, amount in ordered]
    return {
        "title": lines[0][3],
        "kind": lines[0][5],
        "from": [m for m in moves if m[1] <= 0],
        "to": [m for m in moves if m[1] >= 0],
    }


def _set(values: Any) -> list[Any]:
    """A dataflows ``set`` aggregate: each value once."""
    return list(dict.fromkeys(v for v in values if v is not None))


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
