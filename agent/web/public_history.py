"""An item's own page: its fields, labelled and formatted, and the history of its changes.

The history is the item's stored events (``StoredEvent``), oldest first,
after the day the agent first saw it; each change is shown as its field's
label and the values before and after, formatted as alerts format them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from agent import i18n
from agent.i18n import Catalogue
from agent.models import EventType, Item, StoredEvent, StoredItem
from agent.views import shorten

#: Longest before/after value shown for one change (a description can be pages long).
CHANGE_LIMIT = 300
#: Fields holding instants, shown as local dates.
INSTANT_FIELDS = frozenset({"deadline", "published_at"})
#: Fields an item's page always shows ("—" when the source gave none)...
MAIN_FIELDS = ("kind", "publisher", "publishing_unit", "amount", "published_at", "deadline")
#: ...and those it shows only when given (most sources have none of them).
MORE_FIELDS = ("budget_base", "status", "tags", "budget_codes", "source")
#: Events shown as steps: a ``new`` event is the first sighting, the history's start.
_SHOWN_TYPES = frozenset(t.value for t in EventType) - {EventType.NEW.value}
#: The largest id a database row can have (SQLite's and PostgreSQL's bigint).
MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Local:
    """How values are shown to this visitor: language, strings, zone."""

    language: str
    #: The message catalogue (``templates/i18n/<lang>.toml``).
    messages: Catalogue
    #: Labels of the fields the catalogue's ``field`` table lacks (``currency``...).
    extra_labels: Mapping[str, str]
    zone: ZoneInfo

    def label(self, name: str) -> str:
        """A field's label in the visitor's language, capitalised (alerts use it mid-sentence)."""
        label = str(self.messages["field"].get(name) or self.extra_labels.get(name) or name)
        return label[:1].upper() + label[1:]

    def instant(self, value: datetime) -> str:
        """A date, with its time unless it is midnight (a source that gave only a day)."""
        local = value.astimezone(self.zone)
        if local.time() == time(0, 0):
            return i18n.format_day(value, self.language, self.zone)
        return i18n.moment(value, self.language, self.messages, self.zone)

    def days_left(self, deadline: datetime, now: datetime) -> str:
        """How long is left until ``deadline`` (or that it has passed), in words."""
        return i18n.days_left(deadline, now, self.language, self.messages, self.zone)

    def value(self, name: str, value: Any, currency: str | None = None) -> str:
        """One field's value as text; ``—`` for none."""
        if value is None or value == "" or value == [] or value == ():
            return "—"
        if name in ("amount", "budget_base") and isinstance(value, int | float):
            return i18n.amount(float(value), currency, self.language)
        if name == "kind":
            return str(self.messages["kind"].get(value, value))
        if name in INSTANT_FIELDS:
            when = value if isinstance(value, datetime) else _instant(value)
            if when is not None:
                return self.instant(when)
        if isinstance(value, list | tuple):
            value = ", ".join(str(part) for part in value)
        return shorten(str(value), CHANGE_LIMIT)


@dataclass(frozen=True)
class ChangeLine:
    """One field's change: its label and the values before and after."""

    label: str
    before: str
    after: str


@dataclass(frozen=True)
class Step:
    """One event in an item's history."""

    at: datetime
    #: What sort of change it was (one poll may make several events of one change).
    types: list[EventType]
    changes: list[ChangeLine]


def item_fields(item: Item, local: Local) -> list[tuple[str, str, str]]:
    """The item's fields as (name, label, text): the main ones always, the rest when given."""
    names = [*MAIN_FIELDS, *(name for name in MORE_FIELDS if getattr(item, name))]
    return [
        (name, local.label(name), local.value(name, getattr(item, name), item.currency))
        for name in names
    ]


def find_item(session: Session, given: int) -> StoredItem | None:
    """The stored item with id ``given``, or ``None`` (also for ids no database can hold)."""
    return session.get(StoredItem, given) if 0 < given <= MAX_ID else None


def history(session: Session, row: StoredItem, local: Local) -> list[Step]:
    """The item's changes after it was first seen, oldest first, each formatted.

    One poll may make several events of one change (a new deadline and a new
    title: ``deadline_changed`` and ``updated``, each carrying both fields);
    they are one step, with every type named and each field shown once.
    """
    query = (
        select(StoredEvent)
        .where(StoredEvent.item_id == row.id)
        .order_by(col(StoredEvent.created_at), col(StoredEvent.id))
    )
    grouped: dict[datetime, tuple[list[EventType], dict[str, Any], str | None]] = {}
    for stored in session.exec(query).all():
        if stored.type not in _SHOWN_TYPES:
            continue
        types, changes, _ = grouped.setdefault(stored.created_at, ([], {}, None))
        types.append(EventType(stored.type))
        changes.update({k: v for k, v in stored.changes.items() if k not in changes})
        currency = stored.snapshot.get("currency")
        grouped[stored.created_at] = (types, changes, currency)
    return [
        Step(
            at,
            types,
            [_change_line(name, change, currency, local) for name, change in changes.items()],
        )
        for at, (types, changes, currency) in grouped.items()
    ]


def _change_line(name: str, change: Any, currency: str | None, local: Local) -> ChangeLine:
    before, after = (
        change.get(side) if isinstance(change, dict) else None for side in ("before", "after")
    )
    return ChangeLine(
        local.label(name), local.value(name, before, currency), local.value(name, after, currency)
    )


def similar_query(kind: str, publisher: str | None) -> str:
    """The subscribe form's parameters for "this kind, from this publisher"."""
    params = [("kinds", kind)]
    # A list field's value is split at commas (agent.web.forms): a name holding one
    # cannot be given whole, so it is left for the visitor to type.
    if publisher and "," not in publisher:
        params.append(("publishers", publisher))
    return urlencode(params)


def _instant(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
