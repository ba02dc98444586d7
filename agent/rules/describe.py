"""The rule tree written back in the query language, to show users what was understood.

The output parses back to the same tree (``parse_query(describe(n)) == n``
for trees the parser can make), so it doubles as the canonical spelling.
"""

from __future__ import annotations

from functools import lru_cache

from agent.rules.tree import And, Change, Compare, FieldIn, Leaf, Node, Not, Or, Phrase, Term

_OPERATORS = frozenset({"OR", "AND", "NOT"})
_SPECIAL = frozenset(" ():")


def describe(node: Node) -> str:
    """Return ``node`` as a readable query string."""
    if isinstance(node, And):
        return " ".join(_grouped(child, Or) for child in node.children)
    if isinstance(node, Or):
        return " OR ".join(_grouped(child, And) for child in node.children)
    return label(node)


def _grouped(node: Node, parenthesise: type[And] | type[Or]) -> str:
    text = describe(node)
    return f"({text})" if isinstance(node, parenthesise) else text


# Cached: matching labels every clause that matches, for every event.
@lru_cache(maxsize=65_536)
def label(node: Leaf | Not) -> str:
    """Return one clause (a leaf or a negation) as written in a query."""
    match node:
        case Not(And() | Or() | Not() as inner):
            return f"NOT ({describe(inner)})"
        case Not(inner):
            return f"-{label(inner)}"
        case Term(word, _, field, prefix):
            text = _quoted(word) + ("*" if prefix else "")
            return f"{field}:{text}" if field else text
        case Phrase(words, _, field):
            text = '"' + " ".join(words) + '"'
            return f"{field}:{text}" if field else text
        case FieldIn(field, values, _):
            shown = [_quoted(value) for value in values]
            return f"{field}:{shown[0]}" if len(shown) == 1 else f"{field}:({' OR '.join(shown)})"
        case Compare("closing_within", _, value):
            return f"closing_within:{_number(value)}"
        case Compare(field, op, value):
            return f"{field}{op}{_number(value)}"
        case Change("amount", value):
            return f"change>={_number(value)}"
        case Change("percent", value):
            return f"change%>={_number(value)}"
        case Change(what, _):
            return f"change:{what}"
    raise AssertionError(f"not a clause: {node!r}")


def _quoted(text: str) -> str:
    # An inner " between letters is gershayim (צה"ל) and needs no quoting.
    edges = text[:1] + text[-1:]
    if (
        text in _OPERATORS
        or any(char in _SPECIAL for char in text)
        or edges[:1] in "-*"
        or '"' in edges
    ):
        return '"' + text + '"'
    return text


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
