"""The presearch engine gives exactly the brute-force result, reasons included."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import RuleError
from agent.models import Event, EventType, Item, Kind
from agent.rules import Engine, Node, RuleSpec, parse_query
from tests.conftest import NOW

#: A small real vocabulary: tender titles, support criteria, Arabic and English.
WORDS = [
    "מחשוב",
    "שירותי",
    "ענן",
    "ביטוח",
    "חינוך",
    "מבחנים",
    "תמיכה",
    "חולים",
    'צה"ל',
    "שמים",
    "מים",
    "שלום",
    "وزارة",
    "مدرسة",
    "الصحة",
    "cloud",
    "services",
    "computing",
]
PREFIXES = ["", "", "ו", "ה", "ל", "וה", "ב", "של", "כש", "ال", "و"]
PUBLISHERS = ["משרד האוצר - החשב הכללי", "משרד הביטחון", "משרד החינוך", "وزارة الصحة"]
KINDS = ["tender", "call_for_bids", "exemption", "budget_change"]

word = st.sampled_from(WORDS)
field_clause = st.one_of(
    st.sampled_from(KINDS).map(lambda k: f"kind:{k}"),
    st.sampled_from(KINDS).flatmap(
        lambda a: st.sampled_from(KINDS).map(lambda b: f"kind:({a} OR {b})")
    ),
    st.sampled_from([*PUBLISHERS[:3], "משרד"]).map(lambda p: f'publisher:"{p}"'),
    st.sampled_from(["new", "updated"]).map(lambda e: f"event:{e}"),
    st.sampled_from(["100k", "1M", "₪5,000,000"]).map(lambda a: f"amount>={a}"),
    st.sampled_from([3, 10]).map(lambda d: f"days_left>={d}"),
    st.just("closing_within:7"),
    st.sampled_from(["change>=1M", "change%>=10", "change:increase"]),
    st.sampled_from(["code:20.40", "tag:חינוך", "source:mr", "follow:k1", "status:פתוח"]),
)
atom = st.one_of(
    word,
    word,
    st.tuples(word, word).map(lambda p: f'"{p[0]} {p[1]}"'),
    st.sampled_from(["מחש*", "שירו*", "comp*", "وزا*"]),
    st.tuples(st.sampled_from(["title", "description"]), word).map(lambda p: f"{p[0]}:{p[1]}"),
    field_clause,
)


@st.composite
def queries(draw: st.DrawFn, depth: int = 2) -> str:
    """A random query: atoms, negations, implicit AND, OR and groups."""
    if depth == 0 or draw(st.booleans()):
        return str(draw(atom))
    parts = draw(st.lists(queries(depth - 1), min_size=1, max_size=3))
    parts = [
        f"-{p}" if not p.startswith("-") and draw(st.booleans()) and len(parts) > 1 else p
        for p in parts
    ]
    joiner = draw(st.sampled_from([" ", " OR "]))
    return "(" + joiner.join(parts) + ")"


def rules() -> st.SearchStrategy[Node]:
    """Rules from queries, and a few from RuleSpec forms."""
    spec = st.builds(
        RuleSpec,
        query=queries(),
        kinds=st.lists(st.sampled_from(KINDS), max_size=2),
        exclude_publishers=st.lists(st.sampled_from(PUBLISHERS), max_size=1),
        change_min_amount=st.sampled_from([None, 1e6]),
        change_min_percent=st.sampled_from([None, 10.0]),
    )
    return st.one_of(queries().map(parse_query), spec.map(_compiled).filter(bool))


def _compiled(spec: RuleSpec) -> Node | None:
    try:
        return spec.compile()
    except RuleError:  # a form that only excludes is refused, rightly
        return None


def text(draw: st.DrawFn, size: int) -> str:
    pairs = draw(st.lists(st.tuples(st.sampled_from(PREFIXES), word), max_size=size))
    return " ".join(prefix + w for prefix, w in pairs)


@st.composite
def events(draw: st.DrawFn) -> Event:
    """Items with prefixed words from the vocabulary and random attributes."""
    item: dict[str, Any] = {
        "source": draw(st.sampled_from(["mr", "other"])),
        "kind": Kind(draw(st.sampled_from(KINDS))),
        "key": draw(st.sampled_from(["k1", "k2"])),
        "title": text(draw, 6),
        "description": text(draw, 10),
        "publisher": draw(st.sampled_from([None, *PUBLISHERS])),
        "amount": draw(st.sampled_from([None, 5e4, 2e6, -2e6, 8e6])),
        "budget_base": draw(st.sampled_from([None, 0, 1e7, 1e9])),
        "deadline": draw(st.sampled_from([None, -1, 2, 5, 12])),
        "status": draw(st.sampled_from([None, "פתוח", "סגור"])),
        "tags": tuple(draw(st.lists(st.sampled_from(["חינוך", "ענן"]), max_size=2))),
        "budget_codes": tuple(draw(st.lists(st.sampled_from(["00204001", "0021"]), max_size=1))),
    }
    if item["deadline"] is not None:
        item["deadline"] = NOW + timedelta(days=item["deadline"])
    kind = draw(st.sampled_from(list(EventType)))
    return Event(type=kind, item=Item(**item), dedup_key="d")


@settings(max_examples=150, deadline=None)
@given(st.lists(rules(), min_size=1, max_size=25), st.lists(events(), min_size=1, max_size=4))
def test_engine_matches_exactly_like_brute_force(nodes: list[Node], evs: list[Event]) -> None:
    engine = Engine()
    for rule_id, node in enumerate(nodes):
        engine.add(rule_id, node)
    for ev in evs:
        assert engine.match(ev, NOW) == engine.match_brute_force(ev, NOW)


edits = st.lists(
    st.tuples(st.sampled_from(["add", "remove"]), st.integers(0, 6), rules()), max_size=30
)


@settings(max_examples=80, deadline=None)
@given(edits, st.lists(events(), min_size=1, max_size=3))
def test_engine_stays_exact_after_adds_replaces_and_removes(
    steps: list[tuple[str, int, Node]], evs: list[Event]
) -> None:
    engine, expected = Engine(), {}
    for action, rule_id, node in steps:
        if action == "add":
            engine.add(rule_id, node)
            expected[rule_id] = node
        else:
            engine.remove(rule_id)
            expected.pop(rule_id, None)
    fresh = Engine()
    for rule_id, node in expected.items():
        fresh.add(rule_id, node)
    assert len(engine) == len(expected)
    for ev in evs:
        found = engine.match(ev, NOW)
        assert found == engine.match_brute_force(ev, NOW)
        assert found == fresh.match(ev, NOW)
    if not expected:
        assert engine.stats()["postings"] == 0
        assert engine.stats()["always"] == 0
