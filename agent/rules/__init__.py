"""Subscription rules: the query language, text analysis and the matching engine.

* ``parse_query`` / ``RuleSpec.compile`` turn a query string or a form into a
  tree of frozen nodes (``tree``); ``describe`` writes it back;
  ``dump_node`` / ``load_node`` persist it.
* ``evaluate`` checks one tree against one event and says why it matched.
* ``Engine`` indexes many trees and finds those an event satisfies.
"""

from __future__ import annotations

from agent.rules.describe import describe
from agent.rules.document import document_frequency
from agent.rules.evaluate import Match, Reason, evaluate
from agent.rules.index import Engine
from agent.rules.limits import (
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    MAX_VALUE_LENGTH,
    MAX_VALUES,
)
from agent.rules.spec import RuleSpec
from agent.rules.syntax import parse_query
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
    dump_node,
    load_node,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_QUERY_LENGTH",
    "MAX_TERMS",
    "MAX_VALUES",
    "MAX_VALUE_LENGTH",
    "And",
    "Change",
    "Compare",
    "Engine",
    "FieldIn",
    "Match",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "Reason",
    "RuleSpec",
    "Term",
    "describe",
    "document_frequency",
    "dump_node",
    "evaluate",
    "load_node",
    "parse_query",
]
