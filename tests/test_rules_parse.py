"""The rule language: parsing, errors with positions, RuleSpec, describe, JSON round trip."""

from __future__ import annotations

import json

import pytest

from agent.errors import RuleError
from agent.rules import (
    And,
    Change,
    Compare,
    FieldIn,
    Not,
    Or,
    Phrase,
    RuleSpec,
    Term,
    describe,
    dump_node,
    load_node,
    parse_query,
)
from tests.conftest import NGO_QUERY, NGO_SPEC


def test_ngo_rule_as_query_and_as_form_give_the_same_tree() -> None:
    assert parse_query(NGO_QUERY) == NGO_SPEC.compile()


def test_ngo_rule_tree_has_every_clause() -> None:
    assert parse_query(NGO_QUERY) == And(
        (
            Or((Term("מחשוב", "מחשוב"), Phrase(("שירותי", "ענן"), ("שירותי", "עננ")))),
            FieldIn("kind", ("tender", "call_for_bids"), ("tender", "call_for_bids")),
            Not(FieldIn("publisher", ("משרד הביטחון",), ("משרד הבטחנ",))),
            Compare("amount", ">=", 500_000),
            Compare("days_left", ">=", 10),
            FieldIn("event", ("new",), ("new",)),
        )
    )


def test_citizen_budget_rule_as_query_and_as_form_give_the_same_tree() -> None:
    spec = RuleSpec(budget_codes=["20.40"], change_min_amount=5e6, change_min_percent=10)
    query = "code:20.40 (change>=5000000 OR change%>=10)"
    assert parse_query(query) == spec.compile()
    assert spec.compile() == And(
        (
            FieldIn("code", ("20.40",), ("002040",)),
            Or((Change("amount", 5e6), Change("percent", 10))),
        )
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(
            "ביטוח רכב", And((Term("ביטוח", "ביטוח"), Term("רכב", "רכב"))), id="implicit-and"
        ),
        pytest.param("a AND b", And((Term("a", "a"), Term("b", "b"))), id="explicit-and"),
        pytest.param("-ענן", Not(Term("ענן", "עננ")), id="minus-negates"),
        pytest.param("NOT ענן", Not(Term("ענן", "עננ")), id="not-negates"),
        pytest.param("מחשו*", Term("מחשו", "מחשו", prefix=True), id="prefix-after-three-letters"),
        pytest.param('צה"ל', Term('צה"ל', "צהל"), id="gershayim-inside-a-word-is-no-quote"),
        pytest.param('"צה"ל"', Term('צה"ל', "צהל"), id="quoted-word-with-gershayim"),
        pytest.param(
            "covid-19", Phrase(("covid", "19"), ("covid", "19")), id="dash-makes-a-phrase"
        ),
        pytest.param("title:ענן", Term("ענן", "עננ", "title"), id="word-restricted-to-title"),
        pytest.param(
            'description:"שירותי ענן"',
            Phrase(("שירותי", "ענן"), ("שירותי", "עננ"), "description"),
            id="phrase-restricted-to-description",
        ),
        pytest.param(
            "kind:מכרז", FieldIn("kind", ("מכרז",), ("tender",)), id="hebrew-kind-name-is-an-alias"
        ),
        pytest.param("status:פתוח", FieldIn("status", ("פתוח",), ("פתח",)), id="hebrew-status"),
        pytest.param("code:2040", FieldIn("code", ("2040",), ("002040",)), id="code-without-dots"),
        pytest.param("amount>500k", Compare("amount", ">", 500_000), id="amount-in-thousands"),
        pytest.param("amount>=5M", Compare("amount", ">=", 5e6), id="amount-in-millions"),
        pytest.param("amount>₪500,000", Compare("amount", ">", 500_000), id="amount-in-shekels"),
        pytest.param(
            "amount:100000..500000",
            And((Compare("amount", ">=", 1e5), Compare("amount", "<=", 5e5))),
            id="amount-range",
        ),
        pytest.param("closing_within:7", Compare("closing_within", "<=", 7), id="closing-within"),
        pytest.param("change:decrease", Change("decrease"), id="change-direction"),
        pytest.param(
            "event:(new OR updated)",
            FieldIn("event", ("new", "updated"), ("new", "updated")),
            id="several-event-types",
        ),
        pytest.param(
            "follow:mr:596915", FieldIn("follow", ("mr:596915",), ("mr:596915",)), id="follow"
        ),
        pytest.param(
            "وزارة OR ministry",
            Or((Term("وزارة", "وزاره"), Term("ministry", "ministri"))),
            id="arabic-and-english-words",
        ),
    ],
)
def test_query_parses_to_tree(query: str, expected: object) -> None:
    assert parse_query(query) == expected


def test_implicit_and_binds_tighter_than_or() -> None:
    assert parse_query("a b OR c") == Or((And((Term("a", "a"), Term("b", "b"))), Term("c", "c")))


@pytest.mark.parametrize(
    ("query", "position", "words"),
    [
        pytest.param("", 0, "empty", id="empty-query"),
        pytest.param("ענן OR", 4, "OR needs a term after it", id="dangling-or-at-end"),
        pytest.param("OR ענן", 0, "OR needs a term before it", id="dangling-or-at-start"),
        pytest.param("ענן NOT", 4, "NOT needs a term after it", id="dangling-not"),
        pytest.param("ענן -", 4, "nothing to search", id="lone-minus"),
        pytest.param("(ענן OR מחשוב", 0, "never closed", id="unclosed-parenthesis"),
        pytest.param("ענן)", 3, "unmatched ')'", id="extra-closing-parenthesis"),
        pytest.param('ענן "שירותי', 4, "quote is never closed", id="unclosed-quote"),
        pytest.param("ענן price>5", 4, "unknown field 'price'", id="unknown-field"),
        pytest.param("amount>lots", 7, "not a number", id="bad-number"),
        pytest.param("kind:מרכז", 5, "unknown kind", id="unknown-kind"),
        pytest.param("event:born", 6, "unknown event type", id="unknown-event-type"),
        pytest.param("code:abc", 5, "not a budget code", id="bad-budget-code"),
        pytest.param("*ענן", 0, "cannot start a word", id="leading-wildcard"),
        pytest.param("מח*", 0, "at least 3 letters", id="prefix-too-short"),
        pytest.param("kind:", 5, "needs a value", id="field-without-value"),
        pytest.param("change<5", 7, "takes >=", id="change-below-is-not-supported"),
        pytest.param("()", 0, "empty parentheses", id="empty-parentheses"),
    ],
)
def test_bad_query_raises_rule_error_with_position(query: str, position: int, words: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_query(query)
    assert caught.value.position == position
    assert words in caught.value.message
    assert caught.value.query == query


def test_rule_error_shows_a_caret_under_the_position() -> None:
    with pytest.raises(RuleError) as caught:
        parse_query("ענן price>5")
    assert str(caught.value).splitlines()[-1] == "      ^"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        pytest.param(RuleSpec(), "empty", id="empty-spec"),
        pytest.param(RuleSpec(kinds=["tendr"]), "kinds: unknown kind", id="bad-kind-names-field"),
        pytest.param(RuleSpec(budget_codes=["x"]), "budget_codes:", id="bad-code-names-field"),
        pytest.param(RuleSpec(event_types=["x"]), "event_types:", id="bad-event-names-field"),
        pytest.param(RuleSpec(query="-ענן"), "only excludes", id="only-negative-rule"),
    ],
)
def test_bad_spec_raises_rule_error_naming_the_field(spec: RuleSpec, words: str) -> None:
    with pytest.raises(RuleError, match=words):
        spec.compile()


def test_spec_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        RuleSpec.model_validate({"query": "ענן", "kind": ["tender"]})


def test_spec_direction_applies_to_either_threshold() -> None:
    spec = RuleSpec(change_min_amount=1e6, change_min_percent=5, change_direction="increase")
    assert spec.compile() == And(
        (Or((Change("amount", 1e6), Change("percent", 5))), Change("increase"))
    )


def test_describe_shows_the_ngo_rule_readably() -> None:
    assert describe(parse_query(NGO_QUERY)) == NGO_QUERY


@pytest.mark.parametrize(
    "query",
    [
        NGO_QUERY,
        "code:20.40 (change>=5000000 OR change%>=10)",
        'NOT (ענן OR "שירותי ענן") publisher:("משרד האוצר" OR משהב"ט)',
        "title:(ענן OR מחשוב*) -description:ביטחון closing_within:7 amount<1000",
        'follow:"mr:596915" tag:חינוך unit:"אגף רכש" source:gov-tenders status:פתוח',
        "وزارة ministry change:increase kind:(מכרז OR exemption)",
    ],
)
def test_describe_parses_back_to_the_same_tree(query: str) -> None:
    node = parse_query(query)
    assert parse_query(describe(node)) == node


@pytest.mark.parametrize(
    "query",
    [NGO_QUERY, "code:20.40 (change>=5000000 OR change%>=10)", "title:מחשו* -x OR y"],
)
def test_compiled_rule_survives_a_json_round_trip(query: str) -> None:
    node = parse_query(query)
    assert load_node(json.loads(json.dumps(dump_node(node), ensure_ascii=False))) == node


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"nonsense": 1}, id="unknown-node"),
        pytest.param({"term": 5, "key": "x"}, id="term-not-a-string"),
        pytest.param({"compare": "amount", "op": "~", "value": 1}, id="unknown-operator"),
        pytest.param({"and": [{"term": "x"}]}, id="missing-key"),
    ],
)
def test_malformed_compiled_rule_raises_rule_error(data: dict[str, object]) -> None:
    with pytest.raises(RuleError, match="malformed"):
        load_node(data)
