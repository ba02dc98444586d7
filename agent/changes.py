"""Change detection: what happened to an item between two polls. Pure functions.

One re-read item gives at most one event of each type:

* ``new`` -- the (source, key) was never seen before;
* ``status_changed`` -- the source's own status moved (``approved`` instead
  when a budget change goes from pending to approved);
* ``deadline_changed`` -- the deadline moved;
* ``updated`` -- any other field changed;
* ``closing_soon`` -- the deadline is within the window; once per deadline.

Every event of an update carries all the changed fields, before and after.
An event's ``dedup_key`` makes it unique per item, so replaying a poll after a
crash cannot create it twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from agent.models import Change, Event, EventType, Item, Kind

#: Fields with an event type of their own.
_TYPED_FIELDS = frozenset({"status", "deadline"})


def detect(old: Item | None, new: Item) -> list[Event]:
    """Compare the stored state with a fresh read and return the events."""
    if old is None:
        return [Event(type=EventType.NEW, item=new, dedup_key="new")]
    before, after = old.content(), new.content()
    changes = {
        name: Change(before=before.get(name), after=value)
        for name, value in after.items()
        if before.get(name) != value
    }
    if not changes:
        return []
    types = []
    if "status" in changes:
        types.append(_status_event(old, new))
    if "deadline" in changes:
        types.append(EventType.DEADLINE_CHANGED)
    if set(changes) - _TYPED_FIELDS:
        types.append(EventType.UPDATED)
    stamp = f"{old.content_hash()[:12]}>{new.content_hash()[:12]}"
    return [Event(type=t, item=new, changes=changes, dedup_key=f"{t}:{stamp}") for t in types]


def _status_event(old: Item, new: Item) -> EventType:
    if new.kind is Kind.BUDGET_CHANGE and old.status == "pending" and new.status == "approved":
        return EventType.APPROVED
    return EventType.STATUS_CHANGED


def closing_soon(
    item: Item, *, now: datetime, window: timedelta, already_for: datetime | None
) -> Event | None:
    """Return a ``closing_soon`` event if the deadline is near and not yet announced."""
    deadline = item.deadline
    if deadline is None or deadline == already_for or not now <= deadline <= now + window:
        return None
    return Event(
        type=EventType.CLOSING_SOON, item=item, dedup_key=f"closing_soon:{deadline.isoformat()}"
    )
