"""The Budget Key way: one full-text query per saved search, over an FTS5 index of new items.

For each batch of new items an in-memory SQLite FTS5 table is filled (title, description,
publisher, plus a ``forms`` column holding each token with its Hebrew prefixes stripped, so
``ביטוח`` finds ``והביטוח`` as our analyser does), then every rule runs as one ``MATCH``
query, its field filters as SQL ``WHERE`` clauses on unindexed columns. Building the table
is part of the measured time; translating the rules is not (a real service would store the
translation with the rule).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from agent.models import Event
from bench.vocab import strip_forms
from bench.workload import RuleDraft

_WORD = re.compile(r"\w+")
_SCHEMA = (
    "CREATE VIRTUAL TABLE docs USING fts5("
    "title, description, publisher, forms, "
    "kind UNINDEXED, pubnorm UNINDEXED, amount UNINDEXED, deadline UNINDEXED)"
)


def supports_fts5() -> bool:
    """Say whether this Python's SQLite was built with FTS5."""
    with sqlite3.connect(":memory:") as db:
        try:
            db.execute("CREATE VIRTUAL TABLE probe USING fts5(body)")
        except sqlite3.OperationalError:
            return False
    return True


@dataclass(frozen=True, slots=True)
class FtsQuery:
    """One rule as SQL: the statement and its parameters (``now`` filled in per batch)."""

    sql: str
    params: tuple[object, ...]
    #: Index into ``params`` of the "deadline at least" bound, or -1.
    days_slot: int
    min_days_left: int


def translate(draft: RuleDraft) -> FtsQuery:
    """Turn a rule draft into an FTS5 ``MATCH`` query with ``WHERE`` filters."""
    where: list[str] = []
    params: list[object] = []
    if draft.terms:
        where.append("docs MATCH ?")
        params.append(_match_expression(draft))
    if draft.kinds:
        where.append(f"kind IN ({', '.join('?' * len(draft.kinds))})")
        params.extend(draft.kinds)
    if draft.publisher is not None:
        where.append("(pubnorm = ? OR substr(pubnorm, 1, ?) = ?)")
        name = normalise_publisher(draft.publisher)
        params.extend((name, len(name) + 1, name + " "))
    if draft.amount_min is not None:
        where.append("amount > ?")
        params.append(draft.amount_min)
    days_slot = -1
    if draft.min_days_left is not None:
        where.append("deadline >= ?")
        days_slot = len(params)
        params.append(0.0)
    sql = "SELECT rowid FROM docs WHERE " + " AND ".join(where)
    return FtsQuery(sql, tuple(params), days_slot, draft.min_days_left or 0)


def _match_expression(draft: RuleDraft) -> str:
    quoted = [f'"{term}"' for term in draft.terms]
    if draft.shape == "or":
        return "(" + " OR ".join(quoted) + ")"
    if draft.shape == "phrase":
        return '"' + " ".join(draft.terms) + '"'
    if draft.shape == "and_not":
        return f'{quoted[0]} NOT "{draft.negated}"'
    return " AND ".join(quoted)


def normalise_publisher(name: str) -> str:
    """Compare office names without punctuation, quotes or spacing differences."""
    return " ".join(_WORD.findall(name.replace('"', "").replace("'", "")))


class Fts5Baseline:
    """Every rule translated once; ``match`` indexes a batch and runs every query on it."""

    def __init__(self, drafts: Sequence[RuleDraft]) -> None:
        self.queries = [translate(draft) for draft in drafts]

    def match(self, events: Sequence[Event], now: datetime) -> list[list[int]]:
        """Return, for each event in the batch, the ids (list indexes) of matching rules."""
        hits: list[list[int]] = [[] for _ in events]
        db = sqlite3.connect(":memory:", cached_statements=512)
        try:
            _fill(db, events)
            start = now.timestamp()
            for rule_id, query in enumerate(self.queries):
                params: Sequence[object] = query.params
                if query.days_slot >= 0:
                    # The deadline bound depends on the batch's "now", so it is filled here.
                    bound = list(params)
                    bound[query.days_slot] = start + query.min_days_left * 86400.0
                    params = bound
                for (row,) in db.execute(query.sql, params):
                    hits[row - 1].append(rule_id)
        finally:
            db.close()
        return hits


def _fill(db: sqlite3.Connection, events: Sequence[Event]) -> None:
    db.execute(_SCHEMA)
    rows = []
    for rowid, event in enumerate(events, start=1):
        item = event.item
        text = f"{item.title} {item.description} {item.publisher or ''}"
        deadline = item.deadline.timestamp() if item.deadline else None
        publisher = item.publisher or ""
        forms, kind, pubnorm = strip_forms(text), str(item.kind), normalise_publisher(publisher)
        rows.append(
            (
                rowid,
                item.title,
                item.description,
                publisher,
                forms,
                kind,
                pubnorm,
                item.amount,
                deadline,
            )
        )
    db.executemany(
        "INSERT INTO docs(rowid, title, description, publisher, forms, kind, "
        "pubnorm, amount, deadline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
