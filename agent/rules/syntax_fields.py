"""Field clauses of the query language: ``kind:tender``, ``amount>500k``, ``title:word``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.errors import RuleError
from agent.rules.clauses import NUMBER_FIELDS, TEXT_FIELDS, VALUE_FIELDS, field_values, number
from agent.rules.tree import (
    And,
    Change,
    Compare,
    FieldIn,
    Node,
    Not,
    Or,
    Phrase,
    Term,
    all_of,
)

if TYPE_CHECKING:
    from agent.rules.syntax import Parser, Token

_KNOWN = ", ".join([*VALUE_FIELDS, *TEXT_FIELDS, *NUMBER_FIELDS])


def field_clause(parser: Parser, field: Token) -> Node:
    """Parse the rest of a field clause whose FIELD token was just consumed."""
    name, op = field.text, field.op
    if name in TEXT_FIELDS and op == ":":
        return _restrict(parser.unary(), name, field)
    if name in VALUE_FIELDS and op == ":":
        return _values(parser, VALUE_FIELDS[name], field)
    if name in NUMBER_FIELDS:
        value = _value_token(parser, field)
        try:
            return number_clause(name, op, value.text)
        except RuleError as exc:
            raise RuleError(exc.message, position=value.pos) from None
    if name in VALUE_FIELDS or name in TEXT_FIELDS:
        raise RuleError(f"{name} takes ':' and a value, not {op!r}", position=field.pos)
    raise RuleError(f"unknown field {name!r}; known fields: {_KNOWN}", position=field.pos)


def number_clause(name: str, op: str, text: str) -> Node:
    """Build the node of a numeric clause such as ``amount>=500k`` or ``change%>=10``."""
    if name == "change" and op == ":":
        if text not in ("increase", "decrease"):
            raise RuleError(f"change: expected increase or decrease, not {text!r}")
        return Change(text)
    if name in ("change", "change%"):
        if op not in (">=", ">"):
            raise RuleError(f"{name} takes >= (at least), not {op!r}")
        return Change("amount" if name == "change" else "percent", number(text))
    if name == "closing_within":
        if op not in (":", "<="):
            raise RuleError(f"closing_within takes ':' and a number of days, not {op!r}")
        return Compare(name, "<=", number(text))
    if op == ":" and ".." in text:
        low, high = text.split("..", 1)
        return And((Compare(name, ">=", number(low)), Compare(name, "<=", number(high))))
    return Compare(name, "=" if op == ":" else op, number(text))


def _values(parser: Parser, name: str, field: Token) -> Node:
    opening = parser.peek()
    if opening is not None and opening.kind == "(":
        parser.take()
        tokens = [_value_token(parser, field)]
        while (token := parser.peek()) is not None and token.kind == "OR":
            parser.take()
            tokens.append(_value_token(parser, token))
        closing = parser.peek()
        if closing is None or closing.kind != ")":
            at = closing.pos if closing is not None else opening.pos
            raise RuleError(f"{name}:(...) takes values joined by OR and a ')'", position=at)
        parser.take()
    else:
        tokens = [_value_token(parser, field)]
    values = [token.text for token in tokens]
    for token in tokens:
        try:
            field_values(name, [token.text])
        except RuleError as exc:
            raise RuleError(exc.message, position=token.pos) from None
    return FieldIn(name, tuple(values), field_values(name, values))


def _value_token(parser: Parser, after: Token) -> Token:
    token = parser.peek()
    if token is None or token.kind not in ("WORD", "PHRASE"):
        at = token.pos if token is not None else after.pos + len(after.text) + len(after.op)
        raise RuleError(f"{after.text}{after.op} needs a value", position=at)
    return parser.take()


def _restrict(node: Node, field: str, token: Token) -> Node:
    """Restrict every word and phrase in ``node`` to the text field ``field``."""
    if isinstance(node, Term):
        return Term(node.word, node.key, field, node.prefix)
    if isinstance(node, Phrase):
        return Phrase(node.words, node.keys, field)
    if isinstance(node, Not):
        return Not(_restrict(node.child, field, token))
    if isinstance(node, And):
        return all_of([_restrict(child, field, token) for child in node.children])
    if isinstance(node, Or):
        return Or(tuple(_restrict(child, field, token) for child in node.children))
    raise RuleError(f"{field}:(...) may hold only words and phrases", position=token.pos)
