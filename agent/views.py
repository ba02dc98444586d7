"""What templates see of one alert: every value already localised and formatted.

Templates lay out; this module decides what is said (labels, amounts, local
dates, days left, changed fields, why it matched), so the three channels and
any admin's override say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from agent import i18n
from agent.i18n import Catalogue
from agent.rules.explain import Scope, explain

if TYPE_CHECKING:
    from agent.rendering import Alert

#: Longest description shown, in characters: alerts point at the source, not copy it.
DESCRIPTION_LIMIT = 500

#: Longest before/after value shown for a changed field.
CHANGE_LIMIT = 200

#: Fields whose values are instants, shown as local dates.
_INSTANT_FIELDS = frozenset({"deadline", "published_at"})


@dataclass(frozen=True)
class ChangeView:
    """One changed field, labelled and formatted."""

    field: str
    before: str
    after: str


@dataclass(frozen=True)
class ItemView:
    """One alert as the templates show it."""

    delivery_id: int
    event: str
    label: str
    title: str
    url: str | None
    description: str
    publisher: str
    unit: str
    kind: str
    amount: str
    deadline: str
    days_left: str
    changes: tuple[ChangeView, ...]
    #: Why it came: one phrase per clause (``agent.rules.explain``).
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Reader:
    """The reader's language, its strings, the local zone, the reference time, the rule's scope."""

    language: str
    catalogue: Catalogue
    zone: ZoneInfo
    now: datetime
    #: What the subscription's rule admits, so "why" leaves out what every alert meets.
    scope: Scope = field(default_factory=Scope)


def view(alert: Alert, where: Reader) -> ItemView:
    """Build the template view of one alert."""
    event, cat = alert.event, where.catalogue
    item = event.item
    return ItemView(
        delivery_id=alert.delivery_id,
        event=event.type.value,
        label=str(cat["event"].get(event.type.value, event.type.value)),
        title=item.title,
        url=item.url,
        description=shorten(item.description, DESCRIPTION_LIMIT),
        publisher=item.publisher or "",
        unit=item.publishing_unit or "",
        kind=str(cat["kind"].get(item.kind.value, item.kind.value)),
        amount=_amount(item.amount, item.currency, where),
        deadline=_instant(item.deadline, where) if item.deadline else "",
        days_left=(
            i18n.days_left(item.deadline, where.now, where.language, cat, where.zone)
            if item.deadline
            else ""
        ),
        changes=tuple(
            ChangeView(
                _field_label(name, cat),
                _value(name, change.before, item.currency, where),
                _value(name, change.after, item.currency, where),
            )
            for name, change in event.changes.items()
        ),
        reasons=explain(alert.reasons, cat, where.language, where.scope),
    )


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters at a word boundary, marking the cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    # Break at a word when one is near; a single long word is cut where it must be.
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def _amount(value: float | None, currency: str | None, where: Reader) -> str:
    return "" if value is None else i18n.amount(value, currency, where.language)


def _instant(value: datetime, where: Reader) -> str:
    return i18n.moment(value, where.language, where.catalogue, where.zone)


def _field_label(name: str, cat: Catalogue) -> str:
    return str(cat["field"].get(name, name))


def _value(name: str, value: Any, currency: str | None, where: Reader) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if name == "amount" and isinstance(value, int | float):
        return i18n.amount(float(value), currency, where.language)
    if name in _INSTANT_FIELDS:
        when = _parse_instant(value)
        if when is not None:
            return _instant(when, where)
    if isinstance(value, list | tuple):
        value = ", ".join(str(part) for part in value)
    return shorten(str(value), CHANGE_LIMIT)


def _parse_instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
