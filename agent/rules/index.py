"""The reverse index: many stored rules against one event (a percolator).

Each distinct rule tree is stored once and fanned out to every rule id
that uses it. Its conjunctions are posted under their anchors (``dnf``),
each posting with a second word or value the rule cannot match without:
an event analysed once gathers, through its own keys, only the trees
whose anchor *and* second key it has (a two-key "covering" presearch,
filtered in C over compact arrays). Each candidate is then verified with
the exact ``check``. Trees with a conjunction that has no anchor sit in
the always-check bucket, whose size ``stats()`` reports.
``match_brute_force`` evaluates every rule instead and must give the same
result; the tests hold it to that.
"""

from __future__ import annotations

from array import array
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import compress, islice
from operator import itemgetter

from agent.models import Event
from agent.rules.dnf import Anchor, plan
from agent.rules.evaluate import LEAF_CHECKS, UNKNOWN, Context, Match, Reasons, check, evaluate
from agent.rules.tree import And, Node, Not, Or

#: Removed trees (at least) before unused shared leaves are dropped.
COMPACT_AFTER = 10_000
_rule_id = itemgetter(0)
#: An AND of groups; a group is one leaf, or a tuple of leaves to OR.
_Groups = tuple[Node | tuple[Node, ...], ...]


@dataclass(slots=True)
class _Entry:
    """One distinct rule tree, the rule ids using it, and where it is posted."""

    node: Node
    rules: list[int]
    anchors: tuple[Anchor, ...] | None
    #: The tree as an AND of ORs of leaves, when it has that shape (nearly every
    #: rule): ``match`` checks it inline instead of walking the tree.
    groups: _Groups | None
    #: A second key the event must have, checked while gathering ("" if none).
    second: str
    #: Further keys it must have (``Plan.required``), checked first in ``match``.
    required: tuple[str, ...] | None


#: What a removed entry's place in ``Engine._entries`` holds; never a candidate.
_REMOVED = _Entry(And(()), [], None, None, "", None)


class Engine:
    """Rules indexed by anchor; ``match`` returns the rules an event satisfies."""

    def __init__(self, frequency: Mapping[str, int] | None = None) -> None:
        """Start empty; ``frequency`` (key → document count) helps pick rare anchors."""
        self._frequency = frequency
        self._rules: dict[int, int] = {}
        #: Entries by id: a list, as looking one up is the first step for every
        #: candidate. A removed entry's place holds ``_REMOVED``.
        self._entries: list[_Entry] = []
        self._by_node: dict[Node, int] = {}
        #: (is prefix?, kind or "") → anchor key → the entries posted there, each
        #: followed by the number of its ``second`` key (0: none): one flat array
        #: per key, as the index is mostly keys with one or two postings.
        self._tables: dict[tuple[bool, str], dict[str, array[int]]] = {}
        #: Second keys by number, so postings hold them in compact arrays (never
        #: shrinks: it is bounded by the words and values rules use).
        self._key_ids: dict[str, int] = {}
        self._always: set[int] = set()
        #: Equal leaves shared between rules: less memory, and one check per event.
        self._leaves: dict[Node, Node] = {}
        #: Trees removed since ``_leaves`` last dropped the leaves no tree uses.
        self._removed = 0
        self._postings = 0
        self._candidates = 0

    def add(self, rule_id: int, node: Node) -> None:
        """Index ``node`` as rule ``rule_id``, replacing that rule if it exists."""
        self.remove(rule_id)
        entry_id = self._by_node.get(node)
        if entry_id is None:
            node = self._shared(node)
            entry_id = len(self._entries)
            posted, needed = plan(node, self._frequency)
            second, required = self._split(needed, posted)
            entry = _Entry(node, [], posted, _groups(node), second, required)
            self._entries.append(entry)
            self._by_node[node] = entry_id
            self._post(entry_id, entry)
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
        self._entries[entry_id] = _REMOVED
        del self._by_node[entry.node]
        self._unpost(entry_id, entry)
        self._removed += 1
        if self._removed > max(COMPACT_AFTER, len(self._by_node)):
            self._compact()

    def match(self, event: Event, now: datetime) -> list[Match]:
        """Return the rules ``event`` satisfies at ``now``, sorted by rule id."""
        ctx = Context(event, now)
        candidates = self._gather(ctx)
        self._candidates = len(candidates)
        entries, known, memo = self._entries, ctx.memo.get, ctx.memo
        has_all, new = ctx.doc.anchors.issuperset, tuple.__new__
        matched: list[Match] = []
        add = matched.append
        for entry_id in candidates:
            entry = entries[entry_id]
            if entry.required is not None and not has_all(entry.required):
                continue
            groups = entry.groups
            if groups is None:
                reasons = check(entry.node, ctx)
                if reasons is None:
                    continue
            else:
                # check() on an AND of leaves and ORs of leaves, inlined: the hottest
                # loop of matching. A tuple is an OR's leaves, which all run, since
                # every one that matches is a reason.
                reasons = ()
                found: Reasons | None = ()
                for group in groups:
                    if type(group) is tuple:
                        found = None
                        for leaf in group:
                            hit = known(id(leaf), UNKNOWN)
                            if hit is UNKNOWN:
                                hit = memo[id(leaf)] = LEAF_CHECKS[type(leaf)](leaf, ctx)  # type: ignore[index]
                            if hit is not None:
                                found = hit if found is None else found + hit
                    else:
                        found = known(id(group), UNKNOWN)
                        if found is UNKNOWN:
                            found = memo[id(group)] = LEAF_CHECKS[type(group)](group, ctx)  # type: ignore[index]
                    if found is None:
                        break
                    reasons += found
                if found is None:
                    continue
            for rule_id in entry.rules:
                # tuple.__new__ skips NamedTuple's Python-level __new__: half the cost.
                add(new(Match, (rule_id, reasons)))
        matched.sort(key=_rule_id)
        return matched

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
            "distinct": len(self._by_node),
            "postings": self._postings,
            "always": len(self._always),
            "leaves": len(self._leaves),
            "candidates": self._candidates,
        }

    def __len__(self) -> int:
        return len(self._rules)

    def _gather(self, ctx: Context) -> set[int]:
        candidates = set(self._always)
        event_anchors = ctx.doc.anchors
        key_ids = self._key_ids
        # The second keys the event has; 0 stands for "no second key needed".
        present = {0, *(key_ids[key] for key in key_ids.keys() & event_anchors)}
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
                    # Covering presearch: drop entries whose second key is absent, in C.
                    wanted = map(present.__contains__, islice(posted, 1, None, 2))
                    candidates.update(compress(islice(posted, 0, None, 2), wanted))
        return candidates

    def _split(
        self, keys: frozenset[str], posted: tuple[Anchor, ...] | None
    ) -> tuple[str, tuple[str, ...] | None]:
        """Choose the rarest required key as the second key; return it and the rest."""
        by = {(is_prefix, key) for is_prefix, key, _ in posted or ()}
        if len(by) == 1 and not next(iter(by))[0]:
            # The one word an entry is gathered by is present already.
            keys = keys.difference(key for _, key in by)
        if not keys or posted is None:
            return "", tuple(keys) or None
        frequency = self._frequency or {}
        second = min(keys, key=lambda k: (frequency.get(k, 0), -len(k), k))
        rest = tuple(keys - {second})
        return second, rest or None

    def _post(self, entry_id: int, entry: _Entry) -> None:
        if entry.anchors is None:
            self._always.add(entry_id)
            return
        ids = self._key_ids
        second = ids.setdefault(entry.second, len(ids) + 1) if entry.second else 0
        for is_prefix, key, kind in entry.anchors:
            table = self._tables.setdefault((is_prefix, kind), {})
            posted = table.get(key)
            if posted is None:
                posted = table[key] = array("I")
            posted.extend((entry_id, second))
            self._postings += 1

    def _unpost(self, entry_id: int, entry: _Entry) -> None:
        if entry.anchors is None:
            self._always.discard(entry_id)
            return
        for is_prefix, key, kind in entry.anchors:
            table = self._tables[is_prefix, kind]
            posted = table[key]
            at = posted[::2].index(entry_id) * 2
            del posted[at : at + 2]
            self._postings -= 1
            if not posted:
                del table[key]

    def _compact(self) -> None:
        """Forget shared leaves that only removed trees used (rarely: amortised)."""
        self._leaves = {leaf: leaf for tree in self._by_node for leaf in _walk(tree)}
        self._removed = 0

    def _shared(self, node: Node) -> Node:
        if isinstance(node, And):
            return And(tuple(map(self._shared, node.children)))
        if isinstance(node, Or):
            return Or(tuple(map(self._shared, node.children)))
        if isinstance(node, Not):
            return self._leaves.setdefault(node, Not(self._shared(node.child)))
        return self._leaves.setdefault(node, node)


def _walk(node: Node) -> Iterator[Node]:
    """Yield every leaf of ``node``, and every negation (``_shared`` shares both)."""
    if isinstance(node, And | Or):
        for child in node.children:
            yield from _walk(child)
        return
    yield node
    if isinstance(node, Not):
        yield from _walk(node.child)


def _groups(node: Node) -> _Groups | None:
    """Return ``node`` as an AND of leaves and ORs of leaves, or None for deeper trees.

    The tuples are the nodes' own ``children``, shared rather than copied: a
    million rules would otherwise hold a million more tuples.
    """
    if isinstance(node, And) and _all_leaves(node.children):
        return node.children
    groups: list[Node | tuple[Node, ...]] = []
    for part in node.children if isinstance(node, And) else (node,):
        if isinstance(part, Or) and _all_leaves(part.children):
            groups.append(part.children)
        elif isinstance(part, And | Or):
            return None
        else:
            groups.append(part)
    return tuple(groups)


def _all_leaves(nodes: tuple[Node, ...]) -> bool:
    return not any(isinstance(node, And | Or) for node in nodes)
