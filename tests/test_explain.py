"""The "why you got this" sentence: real matches said in Hebrew, Arabic and English."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from agent import i18n
from agent.cli_deliveries import format_reason
from agent.links import Links
from agent.models import Event, EventType, Item, Kind, Subscription
from agent.rendering import BUILTIN_TEMPLATES, Alert, Renderer
from agent.rules import RuleSpec, dump_node, evaluate, parse_query
from agent.rules.explain import UNIVERSE, explain, scope_of, sentence
from agent.rules.tree import Node
from agent.sending import recipient_for
from tests.conftest import NGO_QUERY, NOW

FSI, PDI = "\u2068", "\u2069"

#: A call for proposals whose title has the word חסמים with two attached prefixes.
CALL = Item(
    source="govil-calls",
    kind=Kind.CALL_FOR_BIDS,
    key="call-2026-31",
    title="קול קורא לצמצום הפערים והחסמים בתעסוקה",
    publisher="משרד הכלכלה והתעשייה",
    amount=1_250_000.0,
    currency="ILS",
    deadline=NOW + timedelta(days=12),
)

EVERY_EVENT = "event:(" + " OR ".join(sorted(UNIVERSE["event"])) + ")"
#: Two branches: the kind and the event say which one matched, so they are kept.
TWO_BRANCHES = "(חסמים kind:call_for_bids event:new) OR (תעסוקה kind:tender)"


def reasons_for(rule: Node, item: Item = CALL, event: EventType = EventType.NEW) -> list[Any]:
    """Match for real and return the reasons as a delivery stores them."""
    found = evaluate(rule, Event(type=event, item=item, dedup_key="k"), NOW)
    assert found is not None, "the rule should match"
    return [reason.to_dict() for reason in found]


def said(rule: Node | None, reasons: list[Any], language: str) -> str:
    """The sentence a subscriber with ``rule`` reads (``None``: the rule is not known)."""
    catalogue = i18n.load_catalogue(language, BUILTIN_TEMPLATES)
    return sentence(explain(reasons, catalogue, language, scope_of(rule)), catalogue)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        pytest.param(
            "he",
            f"המילה {FSI}חסמים{PDI} בכותרת (בצורה {FSI}והחסמים{PDI}); "
            f"סוג: {FSI}קול קורא{PDI}; פרסום חדש",
            id="hebrew",
        ),
        pytest.param(
            "ar",
            f"الكلمة {FSI}חסמים{PDI} في العنوان (بصيغة {FSI}והחסמים{PDI})؛ "
            f"النوع: {FSI}دعوة لتقديم طلبات{PDI}؛ منشور جديد",
            id="arabic",
        ),
        pytest.param(
            "en",
            f"the word {FSI}חסמים{PDI} in the title (as {FSI}והחסמים{PDI}); "
            f"kind: {FSI}Call for proposals{PDI}; a new item",
            id="english",
        ),
    ],
)
def test_a_word_a_kind_and_a_new_item_are_said_as_a_sentence(language: str, expected: str) -> None:
    rule = parse_query(TWO_BRANCHES)
    reasons = reasons_for(rule)
    assert [r["clause"] for r in reasons] == ["חסמים", "kind:call_for_bids", "event:new"]
    assert said(rule, reasons, language) == expected


@pytest.mark.parametrize(
    ("language", "word"),
    [
        pytest.param("he", f"המילה {FSI}חסמים{PDI} בכותרת (בצורה {FSI}והחסמים{PDI})", id="he"),
        pytest.param("ar", f"الكلمة {FSI}חסמים{PDI} في العنوان (بصيغة {FSI}והחסמים{PDI})", id="ar"),
        pytest.param(
            "en", f"the word {FSI}חסמים{PDI} in the title (as {FSI}והחסמים{PDI})", id="en"
        ),
    ],
)
def test_clauses_every_alert_of_the_subscription_meets_are_left_out(
    language: str, word: str
) -> None:
    # Every event type, and the only kind the subscription takes: both say nothing.
    rule = parse_query(f"חסמים kind:call_for_bids {EVERY_EVENT}")
    reasons = reasons_for(rule)
    assert len(reasons) == 3, "the exact clauses are all recorded"
    assert said(rule, reasons, language) == word


def test_a_form_with_one_kind_and_one_event_type_says_only_the_word() -> None:
    rule = RuleSpec(query="חסמים", kinds=["call_for_bids"], event_types=["new"]).compile()
    assert said(rule, reasons_for(rule), "en") == (
        f"the word {FSI}חסמים{PDI} in the title (as {FSI}והחסמים{PDI})"
    )


def test_without_the_rule_only_a_clause_listing_everything_is_left_out() -> None:
    rule = parse_query(f"חסמים kind:call_for_bids {EVERY_EVENT}")
    assert said(None, reasons_for(rule), "en") == (
        f"the word {FSI}חסמים{PDI} in the title (as {FSI}והחסמים{PDI}); "
        f"kind: {FSI}Call for proposals{PDI}"
    )


def test_kinds_the_rule_allows_everywhere_are_left_out_however_many() -> None:
    rule = parse_query("חסמים kind:(call_for_bids OR tender)")
    assert "kind" not in said(rule, reasons_for(rule), "en")
    assert said(None, reasons_for(rule), "en").endswith(f"; kind: {FSI}Call for proposals{PDI}")


def test_a_rule_of_trivial_clauses_only_still_says_why() -> None:
    rule = parse_query("kind:call_for_bids")
    assert said(rule, reasons_for(rule), "he") == f"סוג: {FSI}קול קורא{PDI}"


def test_a_budget_change_rule_implies_its_kind() -> None:
    change = Item(
        source="mof-changes",
        kind=Kind.BUDGET_CHANGE,
        key="2026/20.40-7",
        title="העברה תקציבית לתוכנית 20.40",
        amount=-8_000_000.0,
        budget_base=40_000_000.0,
        budget_codes=("20.40.01",),
    )
    rule = parse_query("code:20.40 kind:budget_change (change>=5000000 OR change%>=10)")
    assert said(rule, reasons_for(rule, change), "en") == (
        f"budget code {FSI}20.40.01{PDI}; "
        f"a budget change of {FSI}-₪8,000,000{PDI} (at least {FSI}₪5,000,000{PDI}); "
        f"a budget change of {FSI}-₪8,000,000{PDI} "
        f"(at least {FSI}10%{PDI} of the programme's budget)"
    )


def test_the_ngo_rule_says_its_filters_in_hebrew() -> None:
    rule = parse_query(NGO_QUERY)
    item = CALL.model_copy(update={"title": "קול קורא לשירותי ענן ומחשוב"})
    assert said(rule, reasons_for(rule, item), "he") == (
        f"המילה {FSI}מחשוב{PDI} בכותרת (בצורה {FSI}ומחשוב{PDI}); "
        f"הביטוי {FSI}שירותי ענן{PDI} בכותרת (בצורה {FSI}לשירותי ענן{PDI}); "
        f"למעט מפרסם: {FSI}משרד הביטחון{PDI}; "
        f"סכום {FSI}\u200f1,250,000\xa0\u200f₪{PDI} (לפחות {FSI}\u200f500,000\xa0\u200f₪{PDI}); "
        f"לפחות {FSI}10 ימים{PDI} עד המועד האחרון"
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        pytest.param(
            "en",
            f"a word starting with {FSI}תעסו{PDI} in the title (as {FSI}בתעסוקה{PDI}); "
            f"amount {FSI}₪1,250,000{PDI} (at least {FSI}₪100,000{PDI}, "
            f"at most {FSI}₪5,000,000{PDI}); closes within {FSI}1 day{PDI}; "
            f"excluding the word {FSI}ביטחון{PDI}",
            id="english",
        ),
        pytest.param(
            "ar",
            f"كلمة تبدأ بـ{FSI}תעסו{PDI} في العنوان (بصيغة {FSI}בתעסוקה{PDI})؛ "
            f"المبلغ {FSI}\u200f1,250,000\xa0₪{PDI} ({FSI}\u200f100,000\xa0₪{PDI} على الأقل، "
            f"{FSI}\u200f5,000,000\xa0₪{PDI} على الأكثر)؛ يُغلق خلال {FSI}يوم واحد{PDI}؛ "
            f"باستثناء الكلمة {FSI}ביטחון{PDI}",
            id="arabic",
        ),
    ],
)
def test_a_prefix_an_amount_range_a_deadline_and_an_exclusion(language: str, expected: str) -> None:
    rule = parse_query("תעסו* amount:100k..5M closing_within:1 -ביטחון")
    soon = CALL.model_copy(update={"deadline": NOW + timedelta(hours=20)})
    assert said(rule, reasons_for(rule, soon), language) == expected


def test_days_follow_the_languages_plural_rules() -> None:
    reasons = [{"clause": "days_left>=2", "field": "deadline", "value": "5.0"}]
    assert said(None, reasons, "he") == f"לפחות {FSI}יומיים{PDI} עד המועד האחרון"
    assert said(None, reasons, "en") == f"at least {FSI}2 days{PDI} until the deadline"


def test_publisher_tag_status_source_and_follow_are_named() -> None:
    reasons = [
        {"clause": 'publisher:"משרד האוצר"', "field": "publisher", "matched": "משרד האוצר - החשב"},
        {"clause": "tag:IT", "field": "tag", "matched": "IT"},
        {"clause": "status:פתוח", "field": "status", "matched": "פתוח"},
        {"clause": "source:govil-calls", "field": "source", "matched": "govil-calls"},
        {"clause": "follow:call-2026-31", "field": "follow", "matched": "govil-calls:x"},
    ]
    assert said(None, reasons, "en") == (
        f"publisher: {FSI}משרד האוצר - החשב{PDI}; tag: {FSI}IT{PDI}; status: {FSI}פתוח{PDI}; "
        f"source: {FSI}govil-calls{PDI}; an item you follow"
    )


def test_a_clause_that_no_longer_parses_is_still_shown_as_stored() -> None:
    reasons = [{"clause": "kind:no_such_kind", "field": "kind", "matched": "no_such_kind"}]
    assert said(None, reasons, "en") == f"the condition {FSI}kind:no_such_kind{PDI}"


def test_the_same_phrase_is_said_once() -> None:
    rule = parse_query("חסמים OR title:חסמים")
    assert len(reasons_for(rule)) == 2
    assert said(rule, reasons_for(rule), "en") == (
        f"the word {FSI}חסמים{PDI} in the title (as {FSI}והחסמים{PDI})"
    )


def test_the_dispatcher_gives_the_renderer_the_subscriptions_rule() -> None:
    rule = RuleSpec(query="חסמים", kinds=["call_for_bids"]).compile()
    sub = Subscription(
        id=7, name="חסמים", compiled=dump_node(rule), feed_token="tok", language="en"
    )
    recipient = recipient_for(sub, "team@ngo.example", Links("https://alerts.example", "key"))
    alert = Alert(1, Event(type=EventType.NEW, item=CALL, dedup_key="k"), reasons_for(rule), NOW)
    [out] = Renderer(BUILTIN_TEMPLATES).render("email", recipient, [alert], now=NOW)
    assert f"Why you got this: the word {FSI}חסמים{PDI} in the title (as " in out.message.text
    assert "kind:" not in out.message.text


def test_deliveries_why_still_prints_the_exact_clauses() -> None:
    rule = parse_query(f"חסמים kind:call_for_bids {EVERY_EVENT}")
    lines = [format_reason(reason) for reason in reasons_for(rule)]
    assert lines[0] == "חסמים 'חסמים' in title (as 'והחסמים')"
    assert lines[1].startswith("kind:call_for_bids in kind")
    assert lines[2].startswith(EVERY_EVENT)
