"""Change detection: which events a re-read item gives."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent.changes import closing_soon, detect
from agent.models import EventType, Item, Kind
from tests.conftest import NOW

TENDER = Item(
    source="datagov-tenders",
    kind=Kind.TENDER,
    key="596915/04/2017",
    title="מכרז למתן שירותי ליווי וייעוץ הנדסי",
    publisher="משרד האוצר - החשב הכללי",
    status="פתוח",
    deadline=NOW + timedelta(days=20),
    amount=100000.0,
)


def types(old: Item | None, new: Item) -> list[EventType]:
    return [event.type for event in detect(old, new)]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(None, TENDER, [EventType.NEW], id="an unseen key is new"),
        pytest.param(TENDER, TENDER, [], id="the same content again is nothing"),
        pytest.param(
            TENDER,
            TENDER.model_copy(update={"title": "מכרז מעודכן"}),
            [EventType.UPDATED],
            id="a changed title is an update",
        ),
        pytest.param(
            TENDER,
            TENDER.model_copy(update={"status": "סגור"}),
            [EventType.STATUS_CHANGED],
            id="a changed status is a status change only",
        ),
        pytest.param(
            TENDER,
            TENDER.model_copy(update={"deadline": NOW + timedelta(days=30), "amount": 5.0}),
            [EventType.DEADLINE_CHANGED, EventType.UPDATED],
            id="a moved deadline and a new amount give both events",
        ),
        pytest.param(
            TENDER,
            TENDER.model_copy(update={"raw": {"extra": 1}}),
            [],
            id="a change in the raw payload alone is not content",
        ),
    ],
)
def test_detect_gives_the_expected_events(
    old: Item | None, new: Item, expected: list[EventType]
) -> None:
    assert types(old, new) == expected


def test_update_carries_every_changed_field_before_and_after() -> None:
    [event] = detect(TENDER, TENDER.model_copy(update={"title": "חדש", "amount": 7.0}))
    assert event.changes["title"].before == TENDER.title
    assert event.changes["title"].after == "חדש"
    assert event.changes["amount"].after == 7.0


def test_pending_budget_change_that_is_approved_gives_approved() -> None:
    pending = Item(
        kind=Kind.BUDGET_CHANGE,
        key="2014/01-004",
        title="קליטת עודפים",
        status="pending",
        amount=7_128_000.0,
    )
    approved = pending.model_copy(update={"status": "approved"})
    assert types(pending, approved) == [EventType.APPROVED]


def test_dedup_key_is_the_same_for_the_same_transition() -> None:
    new = TENDER.model_copy(update={"title": "אחר"})
    assert detect(TENDER, new)[0].dedup_key == detect(TENDER, new)[0].dedup_key


def test_closing_soon_fires_once_per_deadline() -> None:
    item = TENDER.model_copy(update={"deadline": NOW + timedelta(days=2)})
    window = timedelta(days=3)
    event = closing_soon(item, now=NOW, window=window, already_for=None)
    assert event is not None
    assert event.type is EventType.CLOSING_SOON
    assert closing_soon(item, now=NOW, window=window, already_for=item.deadline) is None


@pytest.mark.parametrize("days", [pytest.param(-1, id="past"), pytest.param(10, id="far away")])
def test_closing_soon_ignores_deadlines_outside_the_window(days: int) -> None:
    item = TENDER.model_copy(update={"deadline": NOW + timedelta(days=days)})
    assert closing_soon(item, now=NOW, window=timedelta(days=3), already_for=None) is None


def test_items_refuse_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Item(kind=Kind.TENDER, key="k", title="t", deadline=NOW.replace(tzinfo=None))
