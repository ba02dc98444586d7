"""Why an alert came, in the reader's words: matched clauses → short phrases.

A delivery stores its ``Reason``s with the exact clauses (``smart-agent
deliveries why`` prints those). Messages say them with ``explain``: one
phrase per clause from the ``[reason]`` table of the reader's catalogue
("the word ‹חסמים› in the title (as ‹והחסמים›)", "kind: ‹Call for
proposals›", "a new item"), joined into one sentence by ``sentence``. Every
word and value is wrapped in Unicode isolates (FSI … PDI) so a Latin name or
a number cannot reorder a Hebrew or Arabic sentence. Phrases are plain text:
the HTML templates escape them like any other value.

**Clauses left out.** A ``kind:`` or ``event:`` clause is left out when every
alert the subscription can get meets it, that is when the values it lists
include every kind (event type) the subscription's rule admits. A rule
admits, for a clause on that field, the values it lists; for an AND what all
its parts admit; for an OR what any part admits; a budget-change clause
(``change…``) admits only budget changes; anything else admits every value.
Without the rule everything is admitted, so only a clause listing every kind
or every event type (a form with every box ticked) is left out. So for
``חסמים kind:call_for_bids event:new`` only the word is said: the kind and the
event are in the alert's header and the subscriber asked for nothing else;
in ``(חסמים kind:call_for_bids) OR (תעסוקה kind:tender)`` the kind tells which
branch matched and is kept. Words and phrases, exclusions and every other
filter are always said, and if every clause would be left out, none is.

A phrase said twice is said once, and an amount's (or a deadline's) bounds
are said in one phrase: "amount ‹₪1,250,000› (at least ‹₪100,000›, at most
‹₪5,000,000›)".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, reduce
from typing import Any

from babel import Locale

from agent import i18n
from agent.errors import RuleError
from agent.i18n import Catalogue, isolate
from agent.models import EventType, Kind
from agent.rules.describe import describe
from agent.rules.syntax import parse_query
from agent.rules.tree import And, Change, Compare, FieldIn, Node, Not, Or, Phrase, Term

#: Every value of the fields whose clauses may be left out.
UNIVERSE = {
    "kind": frozenset(kind.value for kind in Kind),
    "event": frozenset(event.value for event in EventType),
}

#: The ``[reason]`` key of each comparison operator.
_BOUNDS = {">=": "at_least", "<=": "at_most", ">": "more_than", "<": "less_than", "=": "exactly"}

#: Value clauses said as "label: value" (each name is also its ``[reason]`` key).
_NAMED = frozenset({"publisher", "unit", "code", "status", "tag", "source"})
#: Value clauses ``explain`` has words for.
_SAID = _NAMED | {"kind", "event", "follow"}


@dataclass(frozen=True)
class Scope:
    """The kinds and event types one subscription's rule admits (every one if unknown)."""

    kinds: frozenset[str] = UNIVERSE["kind"]
    events: frozenset[str] = UNIVERSE["event"]

    def admits(self, name: str) -> frozenset[str]:
        """Return what the rule admits for ``kind`` or ``event``."""
        return self.kinds if name == "kind" else self.events


def scope_of(rule: Node | None) -> Scope:
    """Return what ``rule`` admits; every kind and event type when it is not known."""
    if rule is None:
        return Scope()
    return Scope(_admitted(rule, "kind"), _admitted(rule, "event"))


def _admitted(node: Node, name: str) -> frozenset[str]:
    universe = UNIVERSE[name]
    match node:
        case FieldIn(field_name, _, keys) if field_name == name:
            return universe & frozenset(keys)
        case And(children):
            return reduce(frozenset.intersection, (_admitted(c, name) for c in children))
        case Or(children):
            return frozenset().union(*(_admitted(c, name) for c in children))
        case Change() if name == "kind":
            return frozenset({Kind.BUDGET_CHANGE.value})
    return universe


def explain(
    reasons: Sequence[Mapping[str, Any]],
    catalogue: Catalogue,
    language: str,
    scope: Scope | None = None,
) -> tuple[str, ...]:
    """Return the phrases saying why an alert came, trivially met clauses left out."""
    parsed = [(reason, clause_node(str(reason.get("clause", "")))) for reason in reasons]
    within = scope or Scope()
    kept = [(r, node) for r, node in parsed if not _trivial(node, within)] or parsed
    say = _Sayer(catalogue, language)
    slots: list[str | _Bounds] = []
    bounds: dict[str, _Bounds] = {}
    for reason, node in kept:
        if isinstance(node, Compare):
            if node.field not in bounds:
                bounds[node.field] = _Bounds(node.field, reason.get("value"))
                slots.append(bounds[node.field])
            if (node.op, node.value) not in bounds[node.field].limits:
                bounds[node.field].limits.append((node.op, node.value))
        else:
            slots.append(say.reason(reason, node))
    phrases = [slot if isinstance(slot, str) else say.bounds(slot) for slot in slots]
    return tuple(dict.fromkeys(phrases))


def sentence(phrases: Sequence[str], catalogue: Catalogue) -> str:
    """Join phrases into the sentence the messages show."""
    return str(catalogue["reason"]["separator"]).join(phrases)


@lru_cache(maxsize=4096)
def clause_node(clause: str) -> Node | None:
    """Return the node a stored clause label spells, or None if it no longer parses."""
    try:
        return parse_query(clause)
    except RuleError:
        return None


def _trivial(node: Node | None, scope: Scope) -> bool:
    if not isinstance(node, FieldIn) or node.field not in UNIVERSE:
        return False
    return scope.admits(node.field) <= frozenset(node.keys)


@dataclass
class _Bounds:
    """The comparisons one numeric field passed, said together."""

    name: str
    value: Any
    limits: list[tuple[str, float]] = field(default_factory=list)


class _Sayer:
    """Phrases in one language."""

    def __init__(self, catalogue: Catalogue, language: str) -> None:
        self.catalogue = catalogue
        self.texts: Catalogue = catalogue["reason"]
        self.language = language

    def text(self, key: str, **values: str) -> str:
        """Fill the ``[reason]`` phrase ``key``."""
        return str(self.texts[key]).format(**values)

    def reason(self, reason: Mapping[str, Any], node: Node | None) -> str:
        """Say one matched clause."""
        matched = str(reason.get("matched") or "")
        match node:
            case Term() | Phrase():
                return self.found(node, str(reason.get("field") or node.field or ""), matched)
            case FieldIn(name, _, _) if matched and name in _SAID:
                return self.value(name, matched)
            case Change(what, _) if _float(reason.get("value")) is not None:
                return self.change(what, node.value, float(reason["value"]))
            case Not(child):
                return self.text("excluding", what=self.condition(child))
        return self.text("other", clause=isolate(reason.get("clause", "")))

    def found(self, node: Term | Phrase, where: str, matched: str) -> str:
        """Say a word or phrase, where it was found and, if different, as what."""
        what = self.what(node)
        place = self.where(where)
        surface = node.word if isinstance(node, Term) else " ".join(node.words)
        if matched and matched != surface:
            return self.text("found_as", what=what, where=place, matched=isolate(matched))
        return self.text("found", what=what, where=place)

    def what(self, node: Term | Phrase) -> str:
        """Say a word, a word's beginning or a phrase, without where."""
        if isinstance(node, Phrase):
            return self.text("phrase", term=isolate(" ".join(node.words)))
        return self.text("starting" if node.prefix else "word", term=isolate(node.word))

    def where(self, name: str) -> str:
        """Say in which text field."""
        places: Catalogue = self.texts["where"]
        return str(places.get(name, places["text"]))

    def value(self, name: str, value: str) -> str:
        """Say the item's value that met a value clause."""
        if name == "event":
            return str(self.texts["event"].get(value, isolate(value)))
        if name == "follow":
            return self.text("follow")
        shown = self.kind(value) if name == "kind" else value
        return self.text(name, value=isolate(shown))

    def kind(self, value: str) -> str:
        """Return a kind's name in the reader's language."""
        return str(self.catalogue["kind"].get(value, value))

    def condition(self, node: Node) -> str:
        """Say what an exclusion excludes (no item value: it is what the item lacks)."""
        match node:
            case Term(field=None) | Phrase(field=None):
                return self.what(node)
            case Term(field=str(name)) | Phrase(field=str(name)):
                return self.text("found", what=self.what(node), where=self.where(name))
            case FieldIn("kind", _, keys):
                return self.text("kind", value=self.either(self.kind(k) for k in keys))
            case FieldIn(name, values, _) if name in _NAMED:
                return self.text(name, value=self.either(values))
        return isolate(describe(node))

    def either(self, values: Any) -> str:
        """Join values with the language's "or", each isolated."""
        return str(self.texts["or"]).join(isolate(value) for value in values)

    def change(self, what: str, limit: float, amount: float) -> str:
        """Say a budget change and the threshold or direction it met."""
        if what in ("increase", "decrease"):
            return self.text(what, value=isolate(self.money(abs(amount))))
        shown = self.number(limit) + "%" if what == "percent" else self.money(limit)
        key = "change_percent" if what == "percent" else "change_amount"
        bound = self.text("at_least", limit=isolate(shown))
        return self.text(key, value=isolate(self.money(amount)), bounds=bound)

    def bounds(self, group: _Bounds) -> str:
        """Say the comparisons of one numeric field together."""
        if group.name == "closing_within":
            most = min(limit for _, limit in group.limits)
            return self.text("closing_within", limit=isolate(self.days(most)))
        said = str(self.texts["bound_separator"]).join(
            self.text(_BOUNDS[op], limit=isolate(self.limit(group.name, limit)))
            for op, limit in group.limits
        )
        if group.name != "amount":
            return self.text("days_left", bounds=said)
        amount = _float(group.value)
        shown = self.money(amount) if amount is not None else str(group.value or "")
        return self.text("amount", value=isolate(shown), bounds=said)

    def limit(self, name: str, value: float) -> str:
        """Say a threshold: money for amounts, a number of days for deadlines."""
        return self.money(value) if name == "amount" else self.days(value)

    def money(self, value: float) -> str:
        """Say an amount in shekels, as the rest of the message does."""
        return i18n.amount(value, None, self.language)

    def days(self, count: float) -> str:
        """Say a number of days with the language's plural rules."""
        form = Locale.parse(i18n.LOCALES[self.language]).plural_form(count)
        forms: Catalogue = self.texts["days"]
        return str(forms.get(form, forms["other"])).format(n=self.number(count))

    def number(self, value: float) -> str:
        """Say a plain number: ``10``, ``2.5``."""
        return str(int(value)) if value == int(value) else str(value)


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
