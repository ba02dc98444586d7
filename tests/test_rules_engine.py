"""The engine: candidates, shared rules, edits, the always-check bucket and stats."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agent.models import Event, EventType, Item, Kind
from agent.rules import Engine, Match, Reason, RuleSpec, dump_node, load_node, parse_query
from agent.rules.dnf import plan
from agent.rules.index import COMPACT_AFTER
from agent.rules.tree import Term
from tests.conftest import NOW


def event(**fields: Any) -> Event:
    values: dict[str, Any] = {"source": "mr", "kind": Kind.TENDER, "key": "1", "title": ""}
    values.update(fields)
    return Event(type=EventType.NEW, item=Item(**values), dedup_key="d")


CLOUD = event(
    title="מכרז לשירותי ענן ומחשוב",
    publisher="משרד האוצר - החשב הכללי",
    amount=750_000,
    deadline=NOW + timedelta(days=20),
)


def engine_with(*queries: str) -> Engine:
    engine = Engine()
    for rule_id, query in enumerate(queries, start=1):
        engine.add(rule_id, parse_query(query))
    return engine


def test_matching_rules_come_back_sorted_with_reasons() -> None:
    engine = engine_with("ביטוח", "מחשוב kind:tender", "ענן", 'publisher:"משרד הביטחון"')
    assert engine.match(CLOUD, NOW) == [
        Match(
            2,
            (
                Reason("מחשוב", "title", "מחשוב", "ומחשוב"),
                Reason("kind:tender", "kind", None, "tender"),
            ),
        ),
        Match(3, (Reason("ענן", "title", "ענן", "ענן"),)),
    ]


def test_only_rules_sharing_an_anchor_are_verified() -> None:
    engine = engine_with("ביטוח", "חינוך", "מחשוב", "ענן kind:exemption")
    engine.match(CLOUD, NOW)
    assert engine.stats()["candidates"] == 1


def test_identical_rules_are_stored_once_and_fanned_out() -> None:
    engine = Engine()
    for rule_id in (7, 3, 5):
        engine.add(rule_id, parse_query("ענן OR מחשוב"))
    assert engine.stats()["distinct"] == 1
    assert [m.rule_id for m in engine.match(CLOUD, NOW)] == [3, 5, 7]


def test_adding_an_existing_rule_id_replaces_the_rule() -> None:
    engine = engine_with("ענן")
    engine.add(1, parse_query("ביטוח"))
    assert len(engine) == 1
    assert engine.match(CLOUD, NOW) == []


def test_removing_rules_empties_the_index() -> None:
    engine = engine_with("ענן", "amount>5", "ענן", "ענן מחשוב", "(ענן OR ביטוח) -publisher:x")
    for rule_id in (1, 2, 3, 4, 5, 99):
        engine.remove(rule_id)
    assert engine.stats() == {
        "rules": 0,
        "distinct": 0,
        "postings": 0,
        "always": 0,
        "leaves": 6,  # kept until enough trees are removed: see the next test
        "candidates": 0,
    }


def test_leaves_only_removed_rules_used_are_dropped_in_time() -> None:
    engine = engine_with("ענן מחשוב")
    words = [Term(f"w{n}", f"w{n}") for n in range(COMPACT_AFTER + 1)]
    for rule_id, word in enumerate(words, start=2):
        engine.add(rule_id, word)
    for rule_id in range(2, len(words) + 2):
        engine.remove(rule_id)
    assert engine.stats()["leaves"] == 2
    assert [m.rule_id for m in engine.match(CLOUD, NOW)] == [1]


def test_rules_without_anything_to_anchor_are_always_checked() -> None:
    engine = engine_with("amount>=500000 days_left>=10", "ענן")
    assert engine.stats()["always"] == 1
    assert [m.rule_id for m in engine.match(CLOUD, NOW)] == [1, 2]


def test_rules_with_too_many_conjunctions_are_always_checked() -> None:
    wide = " ".join(f"(a{i} OR b{i})" for i in range(7))  # 2**7 = 128 conjunctions
    engine = engine_with(wide)
    assert engine.stats()["always"] == 1


def test_prefix_and_field_rules_are_found_through_the_index() -> None:
    engine = engine_with("מחשו*", 'publisher:"משרד האוצר"', "code:20.40", "follow:mr:1")
    budget = event(kind=Kind.BUDGET_CHANGE, key="x", budget_codes=("00204001",))
    assert [m.rule_id for m in engine.match(CLOUD, NOW)] == [1, 2, 4]
    assert [m.rule_id for m in engine.match(budget, NOW)] == [3]
    assert engine.stats()["always"] == 0


def test_document_frequencies_choose_the_rarer_anchor() -> None:
    common = Engine(frequency={"מכרז": 1000, "ענן": 3})
    common.add(1, parse_query("מכרז ענן"))
    common.match(event(title="מכרז לניקיון"), NOW)
    assert common.stats()["candidates"] == 0


def test_a_rule_is_a_candidate_only_if_the_item_has_its_second_key_too() -> None:
    engine = Engine(frequency={"ענן": 3, "מחשוב": 5, "ביטוח": 8})
    engine.add(1, parse_query("ענן ביטוח"))  # the item lacks ביטוח
    engine.add(2, parse_query('ענן publisher:"משרד הביטחון"'))  # another publisher
    engine.add(3, parse_query("ענן מחשוב"))
    assert [m.rule_id for m in engine.match(CLOUD, NOW)] == [3]
    assert engine.stats()["candidates"] == 1


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        pytest.param("תוכנה מחשוב", {"תוכנה", "מחשוב"}, id="and: every word"),
        pytest.param("(תוכנה מחשוב) OR (תוכנה ביטוח)", {"תוכנה"}, id="or: the words in common"),
        pytest.param(
            '"שירותי תוכנה" kind:tender', {"שירותי", "תוכנה", "\x01kind\x01tender"}, id="phrase"
        ),
        pytest.param("מחשו* -ענן amount>5", set(), id="prefix, negation, number: none"),
        pytest.param("kind:(tender OR exemption)", set(), id="a choice of values: none"),
    ],
)
def test_required_keys_are_what_every_match_needs(query: str, keys: set[str]) -> None:
    assert plan(parse_query(query)).required == keys


def test_further_required_keys_are_checked_before_the_clauses() -> None:
    engine = engine_with('ענן מחשוב "ענן ומחשוב" publisher:"משרד האוצר"', "ענן מחשוב ביטוח")
    assert [m.rule_id for m in engine.match(CLOUD, NOW)] == [1]


def test_rules_loaded_from_their_compiled_form_match_the_same() -> None:
    spec = RuleSpec(query="ענן OR מחשוב", kinds=["tender"], amount_min=500_000)
    engine = Engine()
    engine.add(1, load_node(dump_node(spec.compile())))
    engine.add(2, spec.compile())
    assert engine.stats()["distinct"] == 1
    assert [m.rule_id for m in engine.match(CLOUD, NOW)] == [1, 2]


def test_hebrew_arabic_and_english_items_reach_their_rules() -> None:
    engine = engine_with("ביטוח", "وزارة", "services", "ענן")
    items = [
        event(title="הצעות לביטוח רכב"),
        event(title="مناقصة للوزارة"),
        event(title="Cloud service providers"),
    ]
    assert [[m.rule_id for m in engine.match(e, NOW)] for e in items] == [[1], [2], [3]]
