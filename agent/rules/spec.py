"""``RuleSpec``: the structured form of a rule (forms, TOML/JSON files, the CLI).

``compile()`` gives the AND of the query tree and one node per filled field,
built by the same builders as the query's field clauses, so a form and the
equivalent query string give equal trees.

Budget-change thresholds: ``change_min_amount`` and ``change_min_percent``
together mean *either* (|net change| ≥ amount OR ≥ percent of the base);
``change_direction`` then applies to both. They match budget changes only.

Sizes are limited (``limits``): at most ``MAX_VALUES`` values a field, each
at most ``MAX_VALUE_LENGTH`` characters, finite thresholds, and the query's
own limits; ``compile()`` refuses a rule over them with ``RuleLimitError``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from agent.errors import RuleError
from agent.rules import limits
from agent.rules.clauses import field_values
from agent.rules.syntax import parse_query
from agent.rules.tree import (
    And,
    Change,
    Compare,
    FieldIn,
    Node,
    Not,
    Or,
    all_of,
    any_of,
)


class RuleSpec(BaseModel):
    """A subscription rule: an optional query string plus structured filters (all ANDed)."""

    model_config = ConfigDict(extra="forbid")

    query: str = ""
    kinds: list[str] = []
    publishers: list[str] = []
    exclude_publishers: list[str] = []
    publishing_units: list[str] = []
    sources: list[str] = []
    statuses: list[str] = []
    tags: list[str] = []
    budget_codes: list[str] = []
    amount_min: float | None = None
    amount_max: float | None = None
    min_days_left: float | None = None
    closing_within_days: float | None = None
    event_types: list[str] = []
    change_min_amount: float | None = None
    change_min_percent: float | None = None
    change_direction: Literal["increase", "decrease", "either"] = "either"
    follow: str | None = None

    def compile(self) -> Node:
        """Return the rule tree; raise ``RuleError`` naming the bad field or query position."""
        self._check_sizes()
        parts: list[Node] = [parse_query(self.query)] if self.query.strip() else []
        for name, field, negate in _VALUE_FIELDS:
            values: list[str] = getattr(self, name)
            if values:
                node = _field_in(name, field, values)
                parts.append(Not(node) if negate else node)
        if self.follow:
            parts.append(_field_in("follow", "follow", [self.follow]))
        parts.extend(self._numbers())
        if not parts:
            raise RuleError("the rule is empty: give a query or at least one filter")
        node = all_of(parts)
        if not _has_positive(node):
            raise RuleError("the rule only excludes: add a word or a filter it must match")
        return node

    def _check_sizes(self) -> None:
        """Refuse fields over the size limits, before anything is built from them."""
        limits.check_query_text(self.query)
        for name, _field, _negate in _VALUE_FIELDS:
            limits.check_values(name, getattr(self, name))
        limits.check_values("event_types", self.event_types)
        if self.follow is not None:
            limits.check_values("follow", [self.follow])
        for name in _NUMBER_FIELDS:
            limits.check_number(name, getattr(self, name))

    def _numbers(self) -> list[Node]:
        nodes: list[Node] = []
        if self.amount_min is not None:
            nodes.append(Compare("amount", ">=", self.amount_min))
        if self.amount_max is not None:
            nodes.append(Compare("amount", "<=", self.amount_max))
        if self.min_days_left is not None:
            nodes.append(Compare("days_left", ">=", self.min_days_left))
        if self.closing_within_days is not None:
            nodes.append(Compare("closing_within", "<=", self.closing_within_days))
        if self.event_types:
            nodes.append(_field_in("event_types", "event", self.event_types))
        thresholds: list[Node] = []
        if self.change_min_amount is not None:
            thresholds.append(Change("amount", self.change_min_amount))
        if self.change_min_percent is not None:
            thresholds.append(Change("percent", self.change_min_percent))
        if thresholds:
            nodes.append(any_of(thresholds))
        if self.change_direction != "either":
            nodes.append(Change(self.change_direction))
        return nodes


#: (RuleSpec attribute, query field, excluded?) in the order clauses are ANDed.
_VALUE_FIELDS = (
    ("kinds", "kind", False),
    ("publishers", "publisher", False),
    ("exclude_publishers", "publisher", True),
    ("publishing_units", "unit", False),
    ("sources", "source", False),
    ("statuses", "status", False),
    ("tags", "tag", False),
    ("budget_codes", "code", False),
)

#: The numeric ``RuleSpec`` attributes.
_NUMBER_FIELDS = (
    "amount_min",
    "amount_max",
    "min_days_left",
    "closing_within_days",
    "change_min_amount",
    "change_min_percent",
)


def _field_in(name: str, field: str, values: list[str]) -> Node:
    """Build a field clause; errors name the ``RuleSpec`` attribute."""
    try:
        return FieldIn(field, tuple(values), field_values(field, values))
    except RuleError as exc:
        raise RuleError(f"{name}: {exc.message}") from None


def _has_positive(node: Node) -> bool:
    """Whether every way of matching ``node`` needs something present, not only absent."""
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(_has_positive(child) for child in node.children)
    if isinstance(node, Or):
        return all(_has_positive(child) for child in node.children)
    return True
