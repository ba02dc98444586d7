"""Digests: one item once, in its latest state, and sections like Budget Key's e-mail.

``merge`` folds the alerts of one item that piled up before a message went
out (new, then updated twice) into one: the newest state, every field's first
"before" and last "after", and all their deliveries, so they are marked sent
together. ``sections`` sorts a digest's items into ``Section``s in a fixed
order, newest first within each; empty sections are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from agent.models import Change, EventType, Kind

if TYPE_CHECKING:
    from agent.rendering import Alert

#: A deadline this close puts an item in "closing this week".
CLOSING_WITHIN = timedelta(days=7)


class Section(StrEnum):
    """A digest's sections, in the order they are shown."""

    CLOSING = "closing"
    TENDERS = "tenders"
    EXEMPTIONS = "exemptions"
    CALLS = "calls"
    SUPPORT = "support"
    BUDGET = "budget"
    OTHER = "other"
    UPDATES = "updates"


_NEW_BY_KIND = {
    Kind.TENDER: Section.TENDERS,
    Kind.EXEMPTION: Section.EXEMPTIONS,
    Kind.CALL_FOR_BIDS: Section.CALLS,
    Kind.SUPPORT_CRITERIA: Section.SUPPORT,
    Kind.BUDGET_CHANGE: Section.BUDGET,
}


@dataclass(frozen=True)
class Merged:
    """One item's alerts folded into one, with every delivery it stands for."""

    alert: Alert
    delivery_ids: tuple[int, ...]


def merge(alerts: Sequence[Alert]) -> list[Merged]:
    """Fold the alerts of each item into one, in the order items first appear."""
    by_item: dict[tuple[str, str], list[Alert]] = {}
    for alert in alerts:
        item = alert.event.item
        by_item.setdefault((item.source, item.key), []).append(alert)
    return [_fold(group) for group in by_item.values()]


def _fold(group: list[Alert]) -> Merged:
    ids = tuple(alert.delivery_id for alert in group)
    if len(group) == 1:
        return Merged(group[0], ids)
    ordered = sorted(group, key=lambda a: (a.created_at, a.delivery_id))
    latest = ordered[-1]
    if any(a.event.type is EventType.NEW for a in ordered):
        # New to the reader: its latest state is all there is to say.
        event = latest.event.model_copy(update={"type": EventType.NEW, "changes": {}})
    else:
        changes: dict[str, Change] = {}
        for alert in ordered:
            for name, change in alert.event.changes.items():
                first = changes.get(name, change)
                changes[name] = Change(before=first.before, after=change.after)
        event = latest.event.model_copy(update={"changes": changes})
    reasons = [r for a in ordered for r in a.reasons]
    unique = list({repr(sorted(r.items())): r for r in reasons}.values())
    return Merged(replace(latest, event=event, reasons=unique), ids)


def section_of(alert: Alert, now: datetime) -> Section:
    """The section an alert belongs in."""
    event, item = alert.event, alert.event.item
    closing = item.deadline is not None and now <= item.deadline <= now + CLOSING_WITHIN
    if closing and item.kind is not Kind.BUDGET_CHANGE:
        return Section.CLOSING
    if event.type is EventType.NEW:
        return _NEW_BY_KIND.get(item.kind, Section.OTHER)
    if event.type is EventType.APPROVED:
        return Section.BUDGET
    return Section.UPDATES


def sections(alerts: Sequence[Alert], now: datetime) -> list[tuple[Section, list[Alert]]]:
    """Sort alerts into their sections, newest first within each; leave out empty ones."""
    found: dict[Section, list[Alert]] = {}
    for alert in alerts:
        found.setdefault(section_of(alert, now), []).append(alert)
    return [
        (section, sorted(found[section], key=_newest_first))
        for section in Section
        if section in found
    ]


def _newest_first(alert: Alert) -> tuple[float, int]:
    item = alert.event.item
    when = item.published_at or alert.created_at
    return (-when.timestamp(), -alert.delivery_id)
