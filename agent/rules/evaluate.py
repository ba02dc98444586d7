"""The exact check of one rule tree against one event, with the reasons it matched.

``evaluate`` is what the engine runs on every candidate and what the brute
force runs on every rule, so both agree by construction. Leaf results are
memoised per event by node identity: the engine shares equal leaves between
rules, so a word used by a thousand rules is looked up once per item.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from agent.models import Event, Kind
from agent.rules.analysis import code_key, name_key
from agent.rules.describe import label
from agent.rules.document import Doc
from agent.rules.tree import And, Change, Compare, FieldIn, Leaf, Node, Not, Or, Phrase, Term

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}


class Reason(NamedTuple):
    """One clause that matched: where, which word or value, and what it found."""

    clause: str
    field: str | None = None
    term: str | None = None
    matched: str | None = None
    value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the reason as JSON-ready data, without empty parts."""
        return {key: value for key, value in self._asdict().items() if value is not None}


# Named tuples, not dataclasses: matching builds hundreds per item, and a
# tuple is several times cheaper to create than a frozen dataclass.
class Match(NamedTuple):
    """A rule that matched an event, and why."""

    rule_id: int
    reasons: tuple[Reason, ...]


Reasons = tuple[Reason, ...]
#: Marks a leaf not checked yet for this event (None means "checked: no match").
UNKNOWN: Any = object()


class Context:
    """One event being matched: its analysed ``Doc`` and the leaf results so far."""

    __slots__ = ("doc", "event", "memo", "now")

    def __init__(self, event: Event, now: datetime) -> None:
        self.event = event
        self.now = now
        self.memo: dict[int, Reasons | None] = {}
        self.doc = Doc(event, now)


def evaluate(node: Node, event: Event, now: datetime) -> Reasons | None:
    """Return why ``node`` matches ``event`` at ``now``, or None if it does not."""
    return check(node, Context(event, now))


def check(node: Node, ctx: Context) -> Reasons | None:
    """Evaluate ``node`` in an existing context (shared by every rule for one event)."""
    # The hot path of matching: a type dispatch and one memo lookup per leaf.
    kind = type(node)
    if kind is And:
        return _and(node, ctx)  # type: ignore[arg-type]
    if kind is Or:
        return _or(node, ctx)  # type: ignore[arg-type]
    memo = ctx.memo
    reasons: Reasons | None = memo.get(id(node), UNKNOWN)
    if reasons is UNKNOWN:
        reasons = memo[id(node)] = LEAF_CHECKS[kind](node, ctx)  # type: ignore[index]
    return reasons


def _and(node: And, ctx: Context) -> Reasons | None:
    memo = ctx.memo
    found: Reasons = ()
    for child in node.children:
        # A shared leaf is usually known already: skip the call into check().
        reasons = memo.get(id(child), UNKNOWN)
        if reasons is UNKNOWN:
            reasons = check(child, ctx)
        if reasons is None:
            return None
        found += reasons
    return found


def _or(node: Or, ctx: Context) -> Reasons | None:
    memo = ctx.memo
    found: Reasons | None = None
    for child in node.children:
        reasons = memo.get(id(child), UNKNOWN)
        if reasons is UNKNOWN:
            reasons = check(child, ctx)
        if reasons is not None:
            found = reasons if found is None else found + reasons
    return found


def _not(node: Any, ctx: Context) -> Reasons | None:
    negated: Not = node
    if check(negated.child, ctx) is not None:
        return None
    return (Reason(label(negated)),)


def _term(node: Any, ctx: Context) -> Reasons | None:
    term: Term = node
    doc = ctx.doc
    if not term.prefix and term.key not in doc.anchors:
        return None  # the common answer, without the lookups below
    if term.prefix:
        hit = doc.locate_prefix(term.key, term.field)
    else:
        hit = doc.locate(term.key, term.field)
    if hit is None:
        return None
    return (Reason(label(term), field=hit[0], term=term.word, matched=hit[1]),)


def _phrase(node: Any, ctx: Context) -> Reasons | None:
    phrase: Phrase = node
    hit = ctx.doc.locate_phrase(phrase.keys, phrase.field)
    if hit is None:
        return None
    return (Reason(label(phrase), field=hit[0], term=" ".join(phrase.words), matched=hit[1]),)


def _field(node: Any, ctx: Context) -> Reasons | None:
    clause: FieldIn = node
    value = _field_value(clause, ctx)
    if value is None:
        return None
    return (Reason(label(clause), field=clause.field, matched=value),)


def _field_value(clause: FieldIn, ctx: Context) -> str | None:
    """Return the item's value that satisfies ``clause``, or None."""
    item, name, wanted = ctx.event.item, clause.field, clause.keys
    if name == "kind":
        return item.kind.value if item.kind.value in wanted else None
    if name == "event":
        return ctx.event.type.value if ctx.event.type.value in wanted else None
    if name == "source":
        return item.source if item.source.casefold() in wanted else None
    if name == "follow":
        full = f"{item.source}:{item.key}"
        return full if item.key in wanted or full in wanted else None
    if name in ("publisher", "unit"):
        have = ctx.doc.publisher if name == "publisher" else ctx.doc.unit
        shown = item.publisher if name == "publisher" else item.publishing_unit
        hit = any(have == k or have.startswith(k + " ") for k in wanted)
        return shown if hit and have else None
    if name == "status":
        return item.status if item.status and ctx.doc.status in wanted else None
    if name == "tag":
        return next((tag for tag in item.tags if name_key(tag) in wanted), None)
    if name == "code":
        # The item's code as published (20.40.01), not its key (00204001): readers see it.
        return next(
            (c for c in item.budget_codes if any(code_key(c).startswith(k) for k in wanted)), None
        )
    raise AssertionError(f"unknown field {name!r}")


def _compare(node: Any, ctx: Context) -> Reasons | None:
    clause: Compare = node
    item = ctx.event.item
    if clause.field == "amount":
        if item.amount is None or not _OPS[clause.op](item.amount, clause.value):
            return None
        return (Reason(label(clause), field="amount", value=_number(item.amount)),)
    if item.deadline is None:
        return None
    days = (item.deadline - ctx.now).total_seconds() / 86400
    if clause.field == "closing_within":
        hit = 0 <= days <= clause.value
    else:
        hit = _OPS[clause.op](days, clause.value)
    return (Reason(label(clause), field="deadline", value=f"{days:.1f}"),) if hit else None


def _change(node: Any, ctx: Context) -> Reasons | None:
    clause: Change = node
    item = ctx.event.item
    amount = item.amount
    if item.kind is not Kind.BUDGET_CHANGE or amount is None:
        return None
    if clause.what == "increase":
        hit = amount > 0
    elif clause.what == "decrease":
        hit = amount < 0
    elif clause.what == "amount":
        hit = abs(amount) >= clause.value
    else:
        base = item.budget_base
        hit = bool(base and base > 0 and abs(amount) / base * 100 >= clause.value)
    return (Reason(label(clause), field="amount", value=_number(amount)),) if hit else None


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


LEAF_CHECKS: dict[type[Leaf | Not], Callable[[Any, Context], Reasons | None]] = {
    Term: _term,
    Phrase: _phrase,
    FieldIn: _field,
    Compare: _compare,
    Change: _change,
    Not: _not,
}
