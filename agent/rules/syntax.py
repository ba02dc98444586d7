"""The query language: a small hand-written lexer and recursive-descent parser.

Grammar (implicit AND binds tighter than OR; ``-x`` is ``NOT x``)::

    query   := or_expr
    or_expr := and_expr ("OR" and_expr)*
    and_expr:= unary (["AND"] unary)*
    unary   := ("NOT" | "-") unary | primary
    primary := "(" or_expr ")" | PHRASE | WORD | WORD* | field
    field   := NAME ":" value | NAME ":" "(" value ("OR" value)* ")" | NAME OP NUMBER
             | ("title" | "description") ":" primary

A ``"`` between two letters is gershayim (צה"ל), not a quote. Every error is
a ``RuleError`` carrying the query and the character position. Size limits
(``limits``) are checked before parsing and, for nesting, before each
recursive step, so no query can exhaust Python's stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.errors import RuleError
from agent.rules import limits
from agent.rules.syntax_fields import field_clause
from agent.rules.tree import Node, Not, all_of, any_of

_FIELD = re.compile(r"([A-Za-z_]+%?)(>=|<=|:|>|<|=)")
_OPERATORS = ("OR", "AND", "NOT")


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical unit: ``kind`` is ( ) OR AND NOT - PHRASE WORD or FIELD."""

    kind: str
    text: str
    pos: int
    op: str = ""


def parse_query(text: str) -> Node:
    """Parse a query string into a rule tree; raise ``RuleError`` with the position."""
    try:
        limits.check_query_text(text)
        tokens = _lex(text)
        if not tokens:
            raise RuleError("the query is empty", position=0)
        limits.check_terms([t.pos for t in tokens if t.kind in ("WORD", "PHRASE")])
        parser = Parser(tokens)
        node = parser.or_expr()
        if parser.peek() is not None:
            raise RuleError("unmatched ')'", position=tokens[parser.at].pos)
        return node
    except RuleError as exc:
        raise type(exc)(exc.message, query=text, position=exc.position) from None


class Parser:
    """Recursive descent over the tokens; positions come from the tokens."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.at = 0
        #: Parentheses, NOTs and field clauses around the current term.
        self.depth = 0

    def peek(self) -> Token | None:
        """Return the next token without consuming it."""
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> Token:
        """Consume and return the next token."""
        token = self.tokens[self.at]
        self.at += 1
        return token

    def or_expr(self) -> Node:
        """Parse terms joined by OR."""
        nodes = [self.and_expr()]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.take()
            self._expect_operand(token)
            nodes.append(self.and_expr())
        return any_of(nodes)

    def and_expr(self) -> Node:
        """Parse terms joined by AND or by nothing."""
        nodes = [self.unary()]
        while (token := self.peek()) is not None and token.kind not in ("OR", ")"):
            if token.kind == "AND":
                self.take()
                self._expect_operand(token)
            nodes.append(self.unary())
        return all_of(nodes)

    def unary(self) -> Node:
        """Parse NOT x, -x, or a primary; every level of nesting passes here."""
        token = self.peek()
        if self.depth > limits.MAX_DEPTH:
            raise limits.too_deep(token.pos if token is not None else self._end())
        self.depth += 1
        try:
            if token is not None and token.kind in ("NOT", "-"):
                self.take()
                self._expect_operand(token)
                return Not(self.unary())
            return self.primary()
        finally:
            self.depth -= 1

    def primary(self) -> Node:
        """Parse a group, a phrase, a word or a field clause."""
        token = self.peek()
        if token is None:
            raise RuleError("the query ends where a term was expected", position=self._end())
        if token.kind in ("OR", "AND"):
            raise RuleError(f"{token.kind} needs a term before it", position=token.pos)
        if token.kind == ")":
            raise RuleError("unmatched ')'", position=token.pos)
        self.take()
        if token.kind == "(":
            return self.group(token)
        if token.kind == "FIELD":
            return field_clause(self, token)
        return self.word(token)

    def group(self, opening: Token) -> Node:
        """Parse the inside of parentheses, after the opening one."""
        after = self.peek()
        if after is not None and after.kind == ")":
            raise RuleError("empty parentheses", position=opening.pos)
        node = self.or_expr()
        closing = self.peek()
        if closing is None or closing.kind != ")":
            raise RuleError("'(' is never closed", position=opening.pos)
        self.take()
        return node

    def word(self, token: Token, field: str | None = None) -> Node:
        """Turn a WORD or PHRASE token into a Term or Phrase node."""
        from agent.rules.clauses import text_node

        try:
            if token.kind == "PHRASE":
                return text_node(token.text, field)
            prefix = token.text.endswith("*")
            return text_node(token.text[:-1] if prefix else token.text, field, prefix=prefix)
        except RuleError as exc:
            raise RuleError(exc.message, position=token.pos) from None

    def _expect_operand(self, operator: Token) -> None:
        after = self.peek()
        if after is None or after.kind in ("OR", "AND", ")"):
            name = "NOT" if operator.kind == "-" else operator.kind
            raise RuleError(f"{name} needs a term after it", position=operator.pos)

    def _end(self) -> int:
        last = self.tokens[-1]
        return last.pos + len(last.text)


def _lex(text: str) -> list[Token]:
    tokens: list[Token] = []
    at = 0
    while at < len(text):
        char = text[at]
        if char.isspace():
            at += 1
        elif char in "()":
            tokens.append(Token(char, char, at))
            at += 1
        elif char == '"' and not _gershayim(text, at):
            end = _closing_quote(text, at)
            tokens.append(Token("PHRASE", text[at + 1 : end], at))
            at = end + 1
        elif (
            char == "-"
            and at + 1 < len(text)
            and not text[at + 1].isspace()
            and text[at + 1] != ")"
        ):
            tokens.append(Token("-", "-", at))
            at += 1
        else:
            at = _chunk(text, at, tokens)
    return tokens


def _chunk(text: str, start: int, tokens: list[Token]) -> int:
    end = start
    while end < len(text) and not text[end].isspace() and text[end] not in "()":
        if text[end] == '"' and not _gershayim(text, end):
            break
        end += 1
    chunk = text[start:end]
    if chunk in _OPERATORS:
        tokens.append(Token(chunk, chunk, start))
        return end
    match = _FIELD.match(chunk)
    if match is None:
        tokens.append(Token("WORD", chunk, start))
        return end
    tokens.append(Token("FIELD", match[1].lower(), start, match[2]))
    if match.end() < len(chunk):
        tokens.append(Token("WORD", chunk[match.end() :], start + match.end()))
    return end


def _closing_quote(text: str, start: int) -> int:
    at = start + 1
    while at < len(text):
        if text[at] == '"' and not _gershayim(text, at):
            return at
        at += 1
    raise RuleError("the quote is never closed", position=start)


def _gershayim(text: str, at: int) -> bool:
    return 0 < at < len(text) - 1 and text[at - 1].isalpha() and text[at + 1].isalpha()
