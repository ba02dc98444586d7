"""The reverse index: many stored rules against one event (a percolator).

Each distinct rule tree is stored once and fanned out to every rule id
that uses it. Its conjunctions are posted under their anchors (``dnf``);
an event is analysed once, its anchors gather the candidate trees, and
each candidate is verified with the exact ``check``. Trees with a
conjunction that has no anchor sit in the always-check bucket, whose size
``stats()`` reports. ``match_brute_force`` evaluates every rule instead and
must give the same result; the tests hold it to that.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from agent.models import Event
from agent.rules.dnf import Anchor, anchors
from agent.rules.evaluate import LEAF_CHECKS, UNKNOWN, Context, Match, check, evaluate
from agent.rules.tree import And, Node, Not, Or


@dataclass(slots=True)
class _Entry:
    """One distinct rule tree, the rule ids using it, and where it is posted."""

    node: Node
    rules: list[int]
    anchors: tuple[Anchor, ...] | None
    #: The leaves to check in order when the tree is one leaf or an AND of leaves
    #: (most rules): ``match`` checks them inline instead of walking the tree.
    leaves: tuple[Node, ...] | None


class Engine:
    """Rules indexed by anchor; ``match`` returns the rules an event satisfies."""

    def __init__(self, frequency: Mapping[str, int] | None = None) -> None:
        """Start empty; ``frequency`` (key → document count) helps pick rare anchors."""
        self._frequency = frequency
        self._rules: dict[int, int] = {}
        self._entries: dict[int, _Entry] = {}
        self._by_node: dict[Node, int] = {}
        #: (is prefix?, kind or "") → anchor key → entry ids.
        self._tables: dict[tuple[bool, str], dict[str, array[int]]] = {}
        self._always: set[int] = set()
        #: Equal leaves shared between rules: less memory, and one check per event.
        self._leaves: dict[Node, Node] = {}
        self._next = 0
        self._postings = 0
        self._candidates = 0

    def add(self, rule_id: int, node: Node) -> None:
        """Index ``node`` as rule ``rule_id``, replacing that rule if it exists."""
        self.remove(rule_id)
        node = self._shared(node)
        entry_id = self._by_node.get(node)
        if entry_id is None:
            entry_id = self._next
            self._next += 1
            entry = self._entries[entry_id] = _Entry(
                node, [], anchors(node, self._frequency), _flat_leaves(node)
            )
            self._by_node[node] = entry_id
            self._post(entry_id, entry.anchors)
        self._entries[entry_id].rules.append(rule_id)
        self._rules[rule_id] = entry_id

    def remove(self, rule_id: int) -> None:
        """Forget rule ``rule_id``; nothing happens if it is unknown."""
        entry_id = self._rules.pop(rule_id, None)
        if entry_id is None:
            return
        entry = self._entries[entry_id]
        entry.rules.remove(rule_id)
        if entry.rules:
            return
        del self._entries[entry_id]
        del self._by_node[entry.node]
        self._unpost(entry_id, entry.anchors)

    def match(self, event: Event, now: datetime) -> list[Match]:
        """Return the rules ``event`` satisfies at ``now``, sorted by rule id."""
        ctx = Context(event, now)
        candidates = self._gather(ctx)
        self._candidates = len(candidates)
        entries, known, memo = self._entries, ctx.memo.get, ctx.memo
        found: list[Match] = []
        add = found.append
        for entry_id in candidates:
            entry = entries[entry_id]
            leaves = entry.leaves
            if leaves is None:
                reasons = check(entry.node, ctx)
                if reasons is None:
                    continue
            else:
                # check() on an AND of leaves, inlined: the hottest loop of matching.
                reasons = ()
                for leaf in leaves:
                    hit = known(id(leaf), UNKNOWN)
                    if hit is UNKNOWN:
                        hit = memo[id(leaf)] = LEAF_CHECKS[type(leaf)](leaf, ctx)  # type: ignore[index]
                    if hit is None:
                        break
                    reasons += hit
                if hit is None:
                    continue
            for rule_id in entry.rules:
                add(Match(rule_id, reasons))
        found.sort()  # by rule id: ids are unique, so reasons are never compared
        return found

    def match_brute_force(self, event: Event, now: datetime) -> list[Match]:
        """Evaluate every rule on its own, without the index (for tests and audits)."""
        found = []
        for rule_id in sorted(self._rules):
            reasons = evaluate(self._entries[self._rules[rule_id]].node, event, now)
            if reasons is not None:
                found.append(Match(rule_id, reasons))
        return found

    def stats(self) -> dict[str, int]:
        """Return sizes worth monitoring, the always-check bucket above all."""
        return {
            "rules": len(self._rules),
            "distinct": len(self._entries),
            "postings": self._postings,
            "always": len(self._always),
            "candidates": self._candidates,
        }

    def __len__(self) -> int:
        return len(self._rules)

    def _gather(self, ctx: Context) -> set[int]:
        candidates = set(self._always)
        event_anchors = ctx.doc.anchors
        kind = ctx.event.item.kind.value
        prefixes: set[str] | None = None
        for (is_prefix, partition), table in self._tables.items():
            if partition and partition != kind:
                continue
            if is_prefix:
                if prefixes is None:
                    prefixes = {a[:3] for a in event_anchors if len(a) >= 3 and a[0] != "\x01"}
                keys: Collection[str] = prefixes
            else:
                keys = event_anchors
            if len(table) < len(keys):
                keys = table.keys() & keys
            for key in keys:
                posted = table.get(key)
                if posted is not None:
                    candidates.update(posted)
        return candidates

    def _post(self, entry_id: int, keys: tuple[Anchor, ...] | None) -> None:
        if keys is None:
            self._always.add(entry_id)
            return
        for is_prefix, key, kind in keys:
            table = self._tables.setdefault((is_prefix, kind), {})
            table.setdefault(key, array("I")).append(entry_id)
            self._postings += 1

    def _unpost(self, entry_id: int, keys: tuple[Anchor, ...] | None) -> None:
        if keys is None:
            self._always.discard(entry_id)
            return
        for is_prefix, key, kind in keys:
            table = self._tables[is_prefix, kind]
            posted = table[key]
            posted.remove(entry_id)
            self._postings -= 1
            if not posted:
                del table[key]

    def _shared(self, node: Node) -> Node:
        if isinstance(node, And):
            return And(tuple(map(self._shared, node.children)))
        if isinstance(node, Or):
            return Or(tuple(map(self._shared, node.children)))
        if isinstance(node, Not):
            return self._leaves.setdefault(node, Not(self._shared(node.child)))
        return self._leaves.setdefault(node, node)


def _flat_leaves(node: Node) -> tuple[Node, ...] | None:
    if isinstance(node, And):
        children = node.children
        return children if not any(isinstance(c, And | Or) for c in children) else None
    return None if isinstance(node, Or) else (node,)
