"""The item store: first-seen state per (source, key), and the events it yields.

``record`` applies one successful poll inside the caller's transaction. It
never deletes: an item missing from a batch is only "not seen this time",
because a page, a window or a half-broken answer looks exactly like that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from agent import changes
from agent.models import Event, Item, StoredEvent, StoredItem

#: Keys looked up per query, well under every database's bound-parameter limit.
_CHUNK = 500


@dataclass(frozen=True)
class Recorded:
    """An event as stored, with the id deliveries will point at."""

    event_id: int
    event: Event


def record(
    session: Session,
    source: str,
    items: Sequence[Item],
    *,
    now: datetime,
    closing_window: timedelta,
    silent: bool = False,
) -> list[Recorded]:
    """Store a batch from ``source`` and return the events it caused.

    With ``silent`` (a baseline), state is recorded but no event is kept.
    """
    fresh = {item.key: item.model_copy(update={"source": source}) for item in items}
    stored = _load(session, source, fresh)
    found: list[tuple[StoredItem, Event]] = []
    for key, item in fresh.items():
        row = stored.get(key)
        old = row.to_item() if row is not None else None
        events = changes.detect(old, item)
        row = _save(session, row, item, now=now, changed=bool(events) or old is None)
        found.extend((row, event) for event in events)
    session.flush()
    found.extend(_closing_soon(session, source, now=now, window=closing_window))
    return [] if silent else _keep(session, found, now=now)


def _load(session: Session, source: str, fresh: dict[str, Item]) -> dict[str, StoredItem]:
    keys = list(fresh)
    rows: dict[str, StoredItem] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        query = select(StoredItem).where(
            StoredItem.source == source, col(StoredItem.key).in_(chunk)
        )
        rows.update((row.key, row) for row in session.exec(query))
    return rows


def _save(
    session: Session, row: StoredItem | None, item: Item, *, now: datetime, changed: bool
) -> StoredItem:
    if row is None:
        row = StoredItem(
            source=item.source,
            key=item.key,
            kind=item.kind,
            content_hash="",
            first_seen_at=now,
            last_seen_at=now,
            changed_at=now,
        )
    row.last_seen_at = now
    if changed:
        row.kind = item.kind
        row.content_hash = item.content_hash()
        row.data = item.model_dump(mode="json")
        row.deadline = item.deadline
        row.changed_at = now
    session.add(row)
    return row


def _closing_soon(
    session: Session, source: str, *, now: datetime, window: timedelta
) -> Iterable[tuple[StoredItem, Event]]:
    # Swept over the whole store, not the batch: an item that fell out of a
    # sliding feed still closes.
    query = select(StoredItem).where(
        StoredItem.source == source,
        col(StoredItem.deadline) >= now,
        col(StoredItem.deadline) <= now + window,
    )
    for row in session.exec(query).all():
        event = changes.closing_soon(
            row.to_item(), now=now, window=window, already_for=row.closing_soon_for
        )
        if event is not None:
            row.closing_soon_for = row.deadline
            session.add(row)
            yield row, event


def _keep(
    session: Session, found: list[tuple[StoredItem, Event]], *, now: datetime
) -> list[Recorded]:
    kept: list[tuple[StoredEvent, Event]] = []
    for row, event in found:
        assert row.id is not None, "items are flushed before their events"
        duplicate = session.exec(
            select(StoredEvent.id).where(
                StoredEvent.item_id == row.id, StoredEvent.dedup_key == event.dedup_key
            )
        ).first()
        if duplicate is not None:
            continue
        stored = StoredEvent(
            item_id=row.id,
            type=event.type,
            dedup_key=event.dedup_key,
            created_at=now,
            changes={k: v.model_dump(mode="json") for k, v in event.changes.items()},
            snapshot=event.item.model_dump(mode="json"),
        )
        session.add(stored)
        kept.append((stored, event))
    session.flush()
    return [Recorded(event_id=s.id, event=e) for s, e in kept if s.id is not None]
