"""The soak benchmark's replay plan: recorded Budget Key documents, copied, on a clock.

The documents are the real recorded ones ``tests.fakes.budgetkey_docs`` builds
(``tests/data/budgetkey``, see its SOURCES.md): 21 tenders and exemptions, 359
support criteria, 16 calls for bids and 129 budget-change transactions, 525 in
all, mostly Hebrew. The replay publishes copies of them at ``rate`` an hour for
``seconds``: arrivals are a Poisson process (exponential gaps, so bursts come
as they do upstream), and each copy is the next document of the pool, which is
shuffled again on every pass, so every document comes back about equally
often. A copy keeps the document's shape and content and gets a fresh
identity: a new ``publication_id`` (or budget-change request number) and the
``doc_id`` Budget Key would build from it. Everything comes from one seeded
``random.Random``, so the source's process and the analysis rebuild the same
copies from the plan alone.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.models import Item
from tests.fakes.budgetkey_docs import all_docs
from watchers.budgetkey_docs import budget_change_fields, publication_fields

#: Budget Key's doc types, each one source of the soak (``[sources.bk-<type>]``).
DOC_TYPES = ("tenders", "calls_for_bids", "support_criteria", "national-budget-changes")
#: Fresh identities start here: far above any recorded publication id or request number.
FIRST_ID = 900_000_000


@dataclass(frozen=True)
class Copy:
    """One replayed document: when it becomes visible, which recorded one, its number."""

    #: Seconds after the replay starts.
    at: float
    doc_type: str
    #: Its place in ``pool()[doc_type]``.
    index: int
    #: The copy's number, which its fresh identity is made of.
    number: int


def pool() -> dict[str, list[dict[str, Any]]]:
    """The recorded documents by doc type."""
    return all_docs()


def make(rate: float, seconds: float, seed: int) -> list[Copy]:
    """Plan ``rate`` copies an hour, as a Poisson process, for ``seconds``."""
    rng = random.Random(seed)
    docs = pool()
    flat = [(doc_type, index) for doc_type in DOC_TYPES for index in range(len(docs[doc_type]))]
    order: list[tuple[str, int]] = []
    plan: list[Copy] = []
    at = rng.expovariate(rate / 3600)
    while at < seconds:
        if not order:
            order = rng.sample(flat, len(flat))
        doc_type, index = order.pop()
        plan.append(Copy(at, doc_type, index, len(plan)))
        at += rng.expovariate(rate / 3600)
    return plan


def save(plan: list[Copy], path: Path) -> None:
    """Write the plan as JSON (for the source's process)."""
    rows = [[c.at, c.doc_type, c.index, c.number] for c in plan]
    path.write_text(json.dumps(rows), encoding="utf-8")


def load(path: Path) -> list[Copy]:
    """Read a plan written by ``save``."""
    return [Copy(float(a), str(t), int(i), int(n)) for a, t, i, n in json.loads(path.read_text())]


def document(docs: dict[str, list[dict[str, Any]]], planned: Copy) -> dict[str, Any]:
    """The copy's document: the recorded one with a fresh identity, in Budget Key's shape."""
    doc = copy.deepcopy(docs[planned.doc_type][planned.index])
    fresh = FIRST_ID + planned.number
    if planned.doc_type == "national-budget-changes":
        # Budget Key's transaction id is year/leading item-request number.
        doc["req_code"] = fresh
        doc["transaction_id"] = f"{doc['year']}/{doc['leading_item']:02d}-{fresh}"
        doc["doc_id"] = f"national-budget-changes/{doc['transaction_id']}"
        return doc
    doc["publication_id"] = fresh
    doc["doc_id"] = f"{planned.doc_type}/{doc['tender_type']}/{fresh}/{doc['tender_id']}"
    return doc


def item(doc: dict[str, Any], doc_type: str, base_url: str) -> Item:
    """The item the Budget Key watcher makes of ``doc`` (its link is ``<base_url>/i/<key>``)."""
    if doc_type == "national-budget-changes":
        fields = budget_change_fields(doc)
    else:
        fields = publication_fields(doc, doc_type)
    return Item(**fields, url=f"{base_url}/i/{fields['key']}", raw=doc)
