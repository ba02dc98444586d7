"""Disjunctive normal form and anchor choice, for the presearch index.

A rule matches only if one of its conjunctions does, and a conjunction only
if each positive literal does; so indexing every conjunction under one
positive literal (its *anchor*) never misses a match. The anchor is the
literal most likely to be rare: a long word, then a selective field value.
Negations, numbers and budget-change thresholds cannot anchor. The words
and values common to every conjunction are *required*: the engine tests one
of them while gathering and the rest before checking, both far cheaper
than the check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from agent.rules.document import field_anchor
from agent.rules.tree import And, FieldIn, Node, Or, Phrase, Term

#: Above this many conjunctions a rule goes to the always-check bucket.
MAX_CONJUNCTIONS = 64
#: Field clauses by selectivity, most selective first.
_FIELD_RANK = {
    "follow": 2,
    "code": 3,
    "tag": 4,
    "publisher": 5,
    "unit": 5,
    "status": 6,
    "source": 7,
    "kind": 8,
    "event": 9,
}

#: An anchor: (is a 3-letter prefix key?, posting key, kind partition or "").
Anchor = tuple[bool, str, str]


def conjunctions(node: Node, cap: int = MAX_CONJUNCTIONS) -> list[tuple[Node, ...]] | None:
    """Return ``node`` as an OR of ANDs of literals, or None above ``cap`` conjunctions."""
    if isinstance(node, And):
        if not any(isinstance(child, And | Or) for child in node.children):
            return [node.children]  # most rules: one conjunction, as it stands
        result: list[tuple[Node, ...]] = [()]
        for child in node.children:
            part = conjunctions(child, cap)
            if part is None or len(result) * len(part) > cap:
                return None
            result = [left + right for left in result for right in part]
        return result
    if isinstance(node, Or):
        result = []
        for child in node.children:
            part = conjunctions(child, cap)
            if part is None or len(result) + len(part) > cap:
                return None
            result.extend(part)
        return result
    return [(node,)]


class Plan(NamedTuple):
    """How to index one rule tree: its posting keys, and the keys every match needs."""

    #: The posting keys, or None if the tree must always be checked.
    anchors: tuple[Anchor, ...] | None
    #: Event keys without which the tree cannot match (a cheap test before ``check``):
    #: words and single-valued field clauses common to every conjunction.
    required: frozenset[str]


def plan(node: Node, frequency: Mapping[str, int] | None = None) -> Plan:
    """Return where to post ``node`` in the index and which keys it cannot match without.

    A conjunction that also requires a kind is posted in that kind's partition,
    so a tender never even considers rules that want calls for proposals.
    ``frequency`` (document counts of keys, e.g. over the last 90 days) makes
    the rarest word the anchor; without it the longest word is taken.
    """
    frequency = frequency or {}
    found: dict[Anchor, None] | None = {}
    required: frozenset[str] | None = None
    for conjunction in conjunctions(node) or [()]:
        needed = frozenset(key for literal in conjunction for key in _required(literal))
        required = needed if required is None else required & needed
        scored = [s for s in (_scored(c, frequency) for c in conjunction) if s is not None]
        if not scored or found is None:
            found = None
            continue
        best = min(scored, key=lambda s: s[0])
        kinds = [
            lit.keys for lit in conjunction if isinstance(lit, FieldIn) and lit.field == "kind"
        ]
        partitions = kinds[0] if kinds and best[0][0] != _FIELD_RANK["kind"] else ("",)
        found.update(dict.fromkeys((p, k, kind) for p, k in best[1] for kind in partitions))
    return Plan(None if found is None else tuple(found), required or frozenset())


def _required(literal: Node) -> tuple[str, ...]:
    # Prefixes, numbers, negations and multi-valued clauses need the full check.
    if isinstance(literal, Term):
        return () if literal.prefix else (literal.key,)
    if isinstance(literal, Phrase):
        return literal.keys
    if isinstance(literal, FieldIn) and len(literal.keys) == 1:
        return (field_anchor(literal.field, literal.keys[0]),)
    return ()


def _scored(literal: Node, frequency: Mapping[str, int]) -> _Scored | None:
    if isinstance(literal, Term):
        if literal.prefix:
            return (1, 0, -len(literal.key)), ((True, literal.key[:3]),)
        return (0, frequency.get(literal.key, 0), -len(literal.key)), ((False, literal.key),)
    if isinstance(literal, Phrase):
        key = min(literal.keys, key=lambda k: (frequency.get(k, 0), -len(k)))
        return (0, frequency.get(key, 0), -len(key) - 2), ((False, key),)
    if isinstance(literal, FieldIn):
        keys = tuple((False, field_anchor(literal.field, k)) for k in literal.keys)
        return (_FIELD_RANK[literal.field], len(keys), 0), keys
    return None


_Scored = tuple[tuple[int, int, int], tuple[tuple[bool, str], ...]]
