"""The compiled rule tree: small frozen nodes, and their JSON form.

Both the query string and the structured ``RuleSpec`` fields compile to
these nodes, so equal rules give equal trees (and the engine matches a
tree shared by many subscribers once). Text keys are stored already
analysed, so loading a million persisted rules does not re-analyse them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from agent.errors import RuleError


@dataclass(frozen=True, slots=True)
class Term:
    """A word: ``key`` is its analysed form; ``prefix`` for ``word*``; ``field`` restricts it."""

    word: str
    key: str
    field: str | None = None
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Phrase:
    """Consecutive words in one text field."""

    words: tuple[str, ...]
    keys: tuple[str, ...]
    field: str | None = None


@dataclass(frozen=True, slots=True)
class FieldIn:
    """An item attribute equal to (or, for names and codes, starting with) any of ``keys``."""

    field: str
    values: tuple[str, ...]
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    """A numeric attribute against a number: ``amount``, ``days_left``, ``closing_within``."""

    field: str
    op: str
    value: float


@dataclass(frozen=True, slots=True)
class Change:
    """A budget change: ``amount``/``percent`` at least ``value``, or ``increase``/``decrease``."""

    what: str
    value: float = 0.0


@dataclass(frozen=True, slots=True)
class And:
    """Every child matches."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child matches."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The child does not match."""

    child: Node


Node: TypeAlias = Term | Phrase | FieldIn | Compare | Change | And | Or | Not
Leaf: TypeAlias = Term | Phrase | FieldIn | Compare | Change

#: Operators a ``Compare`` may carry.
OPS = (">=", "<=", ">", "<", "=")
#: What a ``Change`` may test.
CHANGES = ("amount", "percent", "increase", "decrease")


def all_of(nodes: list[Node]) -> Node:
    """Return the AND of ``nodes``, flattening nested ANDs (one node stays itself)."""
    flat: list[Node] = []
    for node in nodes:
        flat.extend(node.children if isinstance(node, And) else (node,))
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def any_of(nodes: list[Node]) -> Node:
    """Return the OR of ``nodes``, flattening nested ORs (one node stays itself)."""
    flat: list[Node] = []
    for node in nodes:
        flat.extend(node.children if isinstance(node, Or) else (node,))
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def dump_node(node: Node) -> dict[str, Any]:
    """Return the JSON form of ``node``."""
    match node:
        case Term(word, key, field, prefix):
            return _compact({"term": word, "key": key, "field": field, "prefix": prefix or None})
        case Phrase(words, keys, field):
            return _compact({"phrase": list(words), "keys": list(keys), "field": field})
        case FieldIn(field, values, keys):
            return {"in": field, "values": list(values), "keys": list(keys)}
        case Compare(field, op, value):
            return {"compare": field, "op": op, "value": value}
        case Change(what, value):
            return {"change": what, "value": value}
        case And(children):
            return {"and": [dump_node(child) for child in children]}
        case Or(children):
            return {"or": [dump_node(child) for child in children]}
        case Not(child):
            return {"not": dump_node(child)}
    raise AssertionError(f"not a rule node: {node!r}")


def load_node(data: dict[str, Any]) -> Node:
    """Rebuild a node from its JSON form; raise ``RuleError`` if it is malformed."""
    try:
        return _load(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RuleError(f"malformed compiled rule: {exc!r}") from exc
    except RecursionError:
        # Only a stored tree edited by hand can be this deep: ``parse_query`` limits nesting.
        raise RuleError("malformed compiled rule: nested too deeply") from None


def _load(data: dict[str, Any]) -> Node:
    # The first key names the node (``dump_node`` writes it first); dispatch on it.
    name = next(iter(data))
    load = _LOADERS.get(name)
    if load is None:
        raise ValueError(f"unknown node {sorted(data)}")
    return load(data)


def _load_term(data: dict[str, Any]) -> Node:
    field = data.get("field")
    return Term(_s(data["term"]), _s(data["key"]), field and _s(field), bool(data.get("prefix")))


def _load_phrase(data: dict[str, Any]) -> Node:
    field = data.get("field")
    return Phrase(_strings(data["phrase"]), _strings(data["keys"]), field and _s(field))


def _load_compare(data: dict[str, Any]) -> Node:
    if data["op"] not in OPS:
        raise ValueError(f"unknown operator {data['op']!r}")
    return Compare(_s(data["compare"]), _s(data["op"]), float(data["value"]))


def _load_change(data: dict[str, Any]) -> Node:
    if data["change"] not in CHANGES:
        raise ValueError(f"unknown change {data['change']!r}")
    return Change(_s(data["change"]), float(data["value"]))


_LOADERS: dict[str, Callable[[dict[str, Any]], Node]] = {
    "term": _load_term,
    "phrase": _load_phrase,
    "in": lambda d: FieldIn(_s(d["in"]), _strings(d["values"]), _strings(d["keys"])),
    "compare": _load_compare,
    "change": _load_change,
    "and": lambda d: And(tuple(map(_load, d["and"]))),
    "or": lambda d: Or(tuple(map(_load, d["or"]))),
    "not": lambda d: Not(_load(d["not"])),
}


def _s(value: Any) -> str:
    # Interned, so a million loaded rules share their repeated words and field names;
    # sys.intern also refuses anything but a str.
    return sys.intern(value)


def _strings(values: Any) -> tuple[str, ...]:
    return tuple(_s(value) for value in values)


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}
