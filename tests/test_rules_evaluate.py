"""Evaluating one rule against one event: what matches, and the reasons given."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agent.models import Event, EventType, Item, Kind
from agent.rules import Reason, RuleSpec, evaluate, parse_query
from tests.conftest import NGO_QUERY, NGO_SPEC, NOW


def event(type: EventType = EventType.NEW, **fields: Any) -> Event:
    """An event on an item with sensible defaults."""
    values: dict[str, Any] = {"source": "mr", "kind": Kind.TENDER, "key": "596915", "title": ""}
    values.update(fields)
    return Event(type=type, item=Item(**values), dedup_key="test")


CLOUD_TENDER = {
    "title": "מכרז לאספקת שירותי ענן ומחשוב למשרדי הממשלה",
    "publisher": "משרד האוצר - החשב הכללי",
    "amount": 750_000,
    "deadline": NOW + timedelta(days=20),
}


def matches(query: str, ev: Event) -> bool:
    return evaluate(parse_query(query), ev, NOW) is not None


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, True, id="cloud-tender-from-finance-matches"),
        pytest.param({"kind": Kind.CALL_FOR_BIDS}, True, id="call-for-bids-matches"),
        pytest.param({"kind": Kind.EXEMPTION}, False, id="exemption-does-not"),
        pytest.param({"publisher": "משרד הבטחון"}, False, id="defence-ministry-excluded"),
        pytest.param({"publisher": "משרד הביטחון - אגף רכש"}, False, id="defence-unit-excluded"),
        pytest.param({"amount": 400_000}, False, id="too-small-amount"),
        pytest.param({"amount": None}, False, id="unknown-amount"),
        pytest.param({"deadline": NOW + timedelta(days=5)}, False, id="too-few-days-left"),
        pytest.param({"deadline": None}, False, id="no-deadline"),
        pytest.param({"title": "מכרז לשירותי ניקיון"}, False, id="other-subject"),
        pytest.param({"title": "הצעות לשירותי ענן"}, True, id="phrase-behind-a-prefix"),
    ],
)
def test_ngo_rule(changes: dict[str, Any], expected: bool) -> None:
    ev = event(**{**CLOUD_TENDER, **changes})
    assert matches(NGO_QUERY, ev) is expected
    assert (evaluate(NGO_SPEC.compile(), ev, NOW) is not None) is expected


def test_ngo_rule_ignores_updates() -> None:
    assert not matches(NGO_QUERY, event(EventType.UPDATED, **CLOUD_TENDER))


def test_reasons_say_which_words_and_values_matched() -> None:
    reasons = evaluate(parse_query(NGO_QUERY), event(EventType.NEW, **CLOUD_TENDER), NOW)
    assert reasons is not None
    assert reasons[0] == Reason("מחשוב", field="title", term="מחשוב", matched="ומחשוב")
    assert reasons[1] == Reason(
        '"שירותי ענן"', field="title", term="שירותי ענן", matched="שירותי ענן"
    )
    assert Reason("amount>=500000", field="amount", value="750000") in reasons
    assert Reason("days_left>=10", field="deadline", value="20.0") in reasons
    assert reasons[1].to_dict() == {
        "clause": '"שירותי ענן"',
        "field": "title",
        "term": "שירותי ענן",
        "matched": "שירותי ענן",
    }


CITIZEN = "code:20.40 (change>=5000000 OR change%>=10)"


def budget_change(amount: float, base: float | None, code: str = "00204001") -> Event:
    return event(
        kind=Kind.BUDGET_CHANGE,
        title="העברה תקציבית",
        amount=amount,
        budget_base=base,
        budget_codes=(code,),
    )


@pytest.mark.parametrize(
    ("ev", "expected"),
    [
        pytest.param(budget_change(6e6, 1e9), True, id="large-increase-matches-by-amount"),
        pytest.param(budget_change(-6e6, 1e9), True, id="large-decrease-matches-by-amount"),
        pytest.param(budget_change(1e6, 5e6), True, id="small-change-matches-by-percent"),
        pytest.param(budget_change(1e6, 1e9), False, id="small-change-of-large-base-does-not"),
        pytest.param(budget_change(1e6, None), False, id="unknown-base-cannot-match-percent"),
        pytest.param(budget_change(1e6, 0), False, id="zero-base-cannot-match-percent"),
        pytest.param(budget_change(6e6, 1e9, "00204101"), False, id="other-programme"),
        pytest.param(budget_change(6e6, 1e9, "002040"), True, id="programme-code-itself"),
        pytest.param(
            event(title="x", amount=6e6, budget_codes=("00204001",)),
            False,
            id="tender-is-no-change",
        ),
    ],
)
def test_citizen_budget_rule(ev: Event, expected: bool) -> None:
    assert matches(CITIZEN, ev) is expected
    spec = RuleSpec(budget_codes=["2040"], change_min_amount=5e6, change_min_percent=10)
    assert (evaluate(spec.compile(), ev, NOW) is not None) is expected


@pytest.mark.parametrize(
    ("query", "amount", "expected"),
    [
        pytest.param("change:increase", 1e6, True, id="increase-is-positive"),
        pytest.param("change:increase", -1e6, False, id="decrease-is-not-increase"),
        pytest.param("change:decrease change>=5M", -6e6, True, id="large-decrease"),
        pytest.param("change:decrease change>=5M", 6e6, False, id="large-increase-not-decrease"),
    ],
)
def test_change_direction(query: str, amount: float, expected: bool) -> None:
    assert matches(query, budget_change(amount, 1e9)) is expected


@pytest.mark.parametrize(
    ("query", "fields", "expected"),
    [
        pytest.param("ביטוח", {"title": "הצעות למתן שירותי והביטוח"}, True, id="hebrew-prefix"),
        pytest.param("ביטוח", {"title": "הביטוחים"}, False, id="suffix-is-not-stripped"),
        pytest.param("שלום", {"title": "שָׁלוֹם"}, True, id="niqqud-in-the-item"),
        pytest.param("שָׁלוֹם", {"title": "שלום"}, True, id="niqqud-in-the-query"),
        pytest.param('צה"ל', {"title": "ציוד לצה״ל"}, True, id="gershayim-variants"),
        pytest.param("ענן", {"title": "ענן"}, True, id="final-letter"),
        pytest.param("מחשו*", {"title": "מחשוב ענן"}, True, id="hebrew-prefix-query"),
        pytest.param("מחשו*", {"title": "והמחשוב"}, True, id="prefix-query-behind-prefix"),
        pytest.param("وزارة", {"title": "والوزارة"}, True, id="arabic-article"),
        pytest.param("مدرسة", {"title": "المدرسه"}, True, id="arabic-teh-marbuta"),
        pytest.param("services", {"title": "Cloud Service"}, True, id="english-stem"),
        pytest.param("comput*", {"title": "Computers"}, True, id="english-prefix"),
        pytest.param("title:ענן", {"description": "ענן"}, False, id="title-only"),
        pytest.param("description:ענן", {"description": "ענן"}, True, id="description-only"),
        pytest.param("ענן", {"tags": ("מחשוב", "ענן")}, True, id="words-in-tags"),
        pytest.param("אוצר", {"publisher": "משרד האוצר"}, True, id="words-in-publisher"),
        pytest.param('"שירותי ענן"', {"title": "ענן שירותי"}, False, id="phrase-order"),
        pytest.param(
            'publisher:"משרד האוצר"',
            {"publisher": "משרד האוצר - החשב הכללי"},
            True,
            id="publisher-by-word-prefix",
        ),
        pytest.param(
            'publisher:"משרד האוצר"',
            {"publisher": "משרד האוצרות"},
            False,
            id="publisher-whole-words",
        ),
        pytest.param('unit:"אגף רכש"', {"publishing_unit": "אגף  רכש"}, True, id="unit"),
        pytest.param("status:פתוח", {"status": "פָּתוּחַ"}, True, id="status"),
        pytest.param("tag:חינוך", {"tags": ("רווחה", "חינוך")}, True, id="tag"),
        pytest.param("source:MR", {}, True, id="source-case-insensitive"),
        pytest.param("follow:596915", {}, True, id="follow-by-key"),
        pytest.param("follow:mr:596915", {}, True, id="follow-by-source-and-key"),
        pytest.param("follow:other:596915", {}, False, id="follow-other-source"),
        pytest.param("kind:מכרז", {}, True, id="hebrew-kind-alias"),
        pytest.param("amount:100..200", {"amount": 150}, True, id="amount-in-range"),
        pytest.param("amount:100..200", {"amount": 250}, False, id="amount-out-of-range"),
    ],
)
def test_clause(query: str, fields: dict[str, Any], expected: bool) -> None:
    assert matches(query, event(**{"title": "", **fields})) is expected


@pytest.mark.parametrize(
    ("days", "query", "expected"),
    [
        pytest.param(3, "closing_within:7", True, id="closing-in-three-days"),
        pytest.param(7, "closing_within:7", True, id="closing-in-exactly-seven-days"),
        pytest.param(8, "closing_within:7", False, id="closing-later"),
        pytest.param(-1, "closing_within:7", False, id="already-closed"),
        pytest.param(10, "days_left>=10", True, id="exactly-ten-days-left"),
        pytest.param(9.9, "days_left>=10", False, id="almost-ten-days-left"),
    ],
)
def test_deadline_windows(days: float, query: str, expected: bool) -> None:
    ev = event(deadline=NOW + timedelta(days=days))
    assert matches(query, ev) is expected


def test_or_gives_the_reasons_of_every_matching_branch() -> None:
    reasons = evaluate(parse_query("ענן OR מחשוב OR ביטוח"), event(title="ענן ומחשוב"), NOW)
    assert reasons is not None
    assert [r.term for r in reasons] == ["ענן", "מחשוב"]


def test_not_clause_is_given_as_a_reason() -> None:
    reasons = evaluate(parse_query("ענן -ביטחון"), event(title="ענן"), NOW)
    assert reasons is not None
    assert reasons[-1] == Reason("-ביטחון")
