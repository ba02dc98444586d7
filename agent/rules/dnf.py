"""Disjunctive normal form and anchor choice, for the presearch index.

A rule matches only if one of its conjunctions does, and a conjunction only
if each positive literal does; so indexing every conjunction under one
positive literal (its *anchor*) never misses a match. The anchor is the
literal most likely to be rare: a long word, then a selective field value.
Negations, numbers and budget-change thresholds cannot anchor.
"""

from __future__ import annotations

from collections.abc import Mapping

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


def anchors(node: Node, frequency: Mapping[str, int] | None = None) -> tuple[Anchor, ...] | None:
    """Return the posting keys to index ``node`` under, or None if it must always be checked.

    A conjunction that also requires a kind is posted in that kind's partition,
    so a tender never even considers rules that want calls for proposals.
    ``frequency`` (document counts of keys, e.g. over the last 90 days) makes
    the rarest word the anchor; without it the longest word is taken.
    """
    frequency = frequency or {}
    found: dict[Anchor, None] = {}
    for conjunction in conjunctions(node) or [()]:
        scored = [s for s in (_scored(c, frequency) for c in conjunction) if s is not None]
        if not scored:
            return None
        best = min(scored, key=lambda s: s[0])
        kinds = [
            lit.keys for lit in conjunction if isinstance(lit, FieldIn) and lit.field == "kind"
        ]
        partitions = kinds[0] if kinds and best[0][0] != _FIELD_RANK["kind"] else ("",)
        found.update(dict.fromkeys((p, k, kind) for p, k in best[1] for kind in partitions))
    return tuple(found)


def required_keys(node: Node) -> frozenset[str]:
    """Return the event keys every match of ``node`` needs (a cheap test before ``check``).

    An event lacking any of them cannot match, so the engine drops such a
    candidate with one set test instead of checking its clauses one by one.
    Only words and single-valued field clauses contribute; the rest (prefixes,
    numbers, negations, thresholds) need the full check.
    """
    if isinstance(node, And):
        return frozenset().union(*map(required_keys, node.children))
    if isinstance(node, Or):
        return frozenset.intersection(*map(required_keys, node.children))
    if isinstance(node, Term) and not node.prefix:
        return frozenset((node.key,))
    if isinstance(node, Phrase):
        return frozenset(node.keys)
    if isinstance(node, FieldIn) and len(node.keys) == 1:
        return frozenset((field_anchor(node.field, node.keys[0]),))
    return frozenset()


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
