"""Budget Key (next.obudget.org) search results for one doc type.

``GET {base_url}/search/{doc_type}?q=&filter=&size=&offset=&order=`` answers
``{search_counts: {_current: {total_overall}}, search_results: [{source: doc}]}``
(sources.md §2). Pages are read by ``offset``/``size`` until ``offset >= total_overall``
or an empty page (a short page only when no total is given), or ``max_pages`` (then
the batch is not ``complete``).

Keys are Budget Key's ``doc_id`` (``tenders/office/596915/04/2017``,
``national-budget-changes/2014/01-004``); a tender number may hold ``/`` or be
``none``, so the id is never split. Naive dates are Israel time. Budget codes are
digits only, ``00`` + section/domain/programme/item pairs (``00204001``).
Recomputed fields (``score``, ``actionable_tips``) stay in ``raw`` only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field

from agent.errors import SourceError
from agent.models import Item, Kind
from watchers.base import Batch, SourceSettings, fetch_json
from watchers.parsing import clean_text, parse_amount, parse_date

DocType = Literal["tenders", "calls_for_bids", "support_criteria", "national-budget-changes"]

_KINDS: dict[str, Kind] = {
    "tenders": Kind.TENDER,
    "calls_for_bids": Kind.CALL_FOR_BIDS,
    "support_criteria": Kind.SUPPORT_CRITERIA,
    "national-budget-changes": Kind.BUDGET_CHANGE,
}


class BudgetKeyWatcher(SourceSettings):
    """Tenders, calls for bids, support criteria or budget changes from Budget Key's search."""

    kind: Literal["budgetkey"]
    #: The Budget Key API; human pages are ``/i/<doc_id>`` on the same host.
    base_url: str = "https://next.obudget.org"
    doc_type: DocType
    #: Free-text query (``q``); empty reads every document of the type.
    query: str = ""
    #: Budget Key filters, e.g. ``{"claim_date__gte": "now"}``, sent as the ``filter`` JSON.
    filters: dict[str, Any] = Field(default_factory=dict)
    #: Sort order, e.g. ``-__last_modified_at``; empty leaves Budget Key's relevance order.
    order: str = ""
    page_size: int = Field(default=100, ge=1, le=1000)

    async def poll(self, http: httpx.AsyncClient, cursor: str | None) -> Batch:
        """Read every page of the search; the cursor is not used (the search is re-read)."""
        docs, complete = await self._read_docs(http)
        items: dict[str, Item] = {}
        for doc in docs:
            item = self._item(doc)
            items.setdefault(item.key, item)  # offset paging can repeat a document
        return Batch(items=list(items.values()), cursor=cursor, complete=complete)

    async def _read_docs(self, http: httpx.AsyncClient) -> tuple[list[dict[str, Any]], bool]:
        url = f"{self.base_url.rstrip('/')}/search/{self.doc_type}"
        docs: list[dict[str, Any]] = []
        for _ in range(self.max_pages):
            results, total = _page(url, await fetch_json(http, url, **self._params(len(docs))))
            docs.extend(results)
            if _last_page(len(results), len(docs), total, self.page_size):
                return docs, True
        return docs, False

    def _params(self, offset: int) -> dict[str, Any]:
        params: dict[str, Any] = {"q": self.query, "size": self.page_size, "offset": offset}
        if self.filters:
            params["filter"] = json.dumps(self.filters, ensure_ascii=False)
        if self.order:
            params["order"] = self.order
        return params

    def _item(self, doc: dict[str, Any]) -> Item:
        site = urlsplit(self.base_url)
        if self.doc_type == "national-budget-changes":
            fields = _budget_change(doc)
        else:
            fields = _publication(doc, self.doc_type)
        return Item(**fields, url=f"{site.scheme}://{site.netloc}/i/{fields['key']}", raw=doc)


def _last_page(count: int, read: int, total: int | None, size: int) -> bool:
    """Say whether paging is done: a short page ends it only when no total is given.

    A server may cap ``size`` silently; trusting a short page then would cut the
    listing short and still call it complete.
    """
    if total is not None:
        return count == 0 or read >= total
    return count < size


def _page(url: str, payload: Any) -> tuple[list[dict[str, Any]], int | None]:
    """Return a search page's documents and ``total_overall``, or raise if it is not one."""
    results = payload.get("search_results") if isinstance(payload, dict) else None
    if not isinstance(results, list):
        raise SourceError(f"{url}: no search_results list in the answer")
    counts = payload.get("search_counts") or {}
    total = (counts.get("_current") or {}).get("total_overall")
    docs = [
        r["source"] for r in results if isinstance(r, dict) and isinstance(r.get("source"), dict)
    ]
    return docs, total if isinstance(total, int) else None


def _publication(doc: dict[str, Any], doc_type: str) -> dict[str, Any]:
    """Map a tender, call for bids or support-criteria document."""
    tender_type = _text(doc.get("tender_type")) or doc_type
    key = _text(doc.get("doc_id")) or "/".join(
        [doc_type, tender_type, _text(doc.get("publication_id")) or "none",
         _text(doc.get("tender_id")) or "none"]
    )  # fmt: skip
    title = _text(doc.get("page_title")) or _text(doc.get("description"))
    description = _text(doc.get("description"))
    amount = parse_amount(_first(doc, "volume", "contract_volume"))
    codes = [*(doc.get("budget_codes") or []), *_codes_of(doc.get("resolved_budget_codes"))]
    return {
        "kind": Kind.EXEMPTION if tender_type == "exemptions" else _KINDS[doc_type],
        "key": key,
        "title": title,
        "description": "" if description == title else description,
        "publisher": _text(doc.get("publisher")) or None,
        "publishing_unit": _text(_first(doc, "publishing_unit", "publisher_unit")) or None,
        # 0 is what the registers write when the amount is not known.
        "amount": amount or None,
        "currency": "ILS" if amount else None,
        "published_at": parse_date(_text(_first(doc, "publication_date", "start_date"))),
        "deadline": parse_date(_text(doc.get("claim_date"))),
        "status": _text(_first(doc, "decision", "simple_decision")) or None,
        "budget_codes": _budget_codes(codes),
        "tags": _split(_text(doc.get("subjects")), ";"),
    }


def _budget_change(doc: dict[str, Any]) -> dict[str, Any]:
    """Map a ``national-budget-changes`` transaction."""
    transaction_id = _text(doc.get("transaction_id"))
    summary: dict[str, Any] = doc["summary"] if isinstance(doc.get("summary"), dict) else {}
    moves = [*(summary.get("from") or []), *(summary.get("to") or [])]
    changes = [c for c in doc.get("change_list") or [] if isinstance(c, dict)]
    titles = [_text(t) for t in doc.get("req_title") or []]
    dates = [d for d in (parse_date(_text(t)) for t in doc.get("date") or []) if d]
    amount = parse_amount(_first(doc, "net_expense_diff", "amount"))
    codes = [m[0] for m in moves if m] + [c.get("budget_code") for c in changes]
    kinds = [*(doc.get("change_type_name") or []), *(doc.get("change_title") or [])]
    return {
        "kind": Kind.BUDGET_CHANGE,
        "key": _text(doc.get("doc_id")) or f"national-budget-changes/{transaction_id}",
        "title": _text(summary.get("title")) or next((t for t in titles if t), transaction_id),
        "description": _text(doc.get("explanation")) or _describe_moves(moves),
        "amount": amount,
        "currency": "ILS" if amount is not None else None,
        "published_at": max(dates, default=None),
        "status": "pending" if doc.get("is_pending") else "approved",
        "budget_codes": _budget_codes(codes),
        "tags": tuple(dict.fromkeys(t for t in (_text(k) for k in kinds) if t)),
    }


def _describe_moves(moves: list[Any]) -> str:
    """Render ``[[code, amount, title], …]`` as ``00015101 נשיא המדינה: +6,830,000 ₪`` lines."""
    lines = []
    for move in moves:
        code, amount, title = [*move, None, None, None][:3]
        value = parse_amount(amount)
        shown = f"{value:+,.0f} ₪" if value is not None else ""
        lines.append(f"{_budget_code(code) or ''} {_text(title)}: {shown}".strip())
    return "\n".join(lines)


def _codes_of(resolved: Any) -> list[Any]:
    return [r.get("code") for r in resolved or [] if isinstance(r, dict)]


def _budget_codes(values: Iterable[Any]) -> tuple[str, ...]:
    codes = (_budget_code(v) for v in values)
    return tuple(dict.fromkeys(code for code in codes if code))


def _budget_code(value: Any) -> str | None:
    """Normalise ``20.40.01``, ``0020400`` or ``15101`` to ``00`` + digit pairs."""
    digits = re.sub(r"\D", "", _text(value))
    if not digits:
        return None
    if len(digits) % 2:
        digits = "0" + digits  # MoF drops the leading zero of a one-digit section
    return digits if digits.startswith("00") else "00" + digits


def _first(doc: dict[str, Any], *names: str) -> Any:
    return next((doc[n] for n in names if doc.get(n) not in (None, "")), None)


def _text(value: Any) -> str:
    return "" if value is None else clean_text(str(value))


def _split(text: str, separator: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in text.split(separator) if p.strip()))
