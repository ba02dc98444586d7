"""Editing a subscription's rule from the console: what it would change, then saving it.

``preview`` is ``smart-agent rules diff`` for a page: the edited rule and the
saved one are run over the last ``PREVIEW_DAYS`` days of stored history, and
the events only the new one matches (added) or only the old one (removed) are
listed. ``save_rule`` stores the edited rule and writes who changed it, with
the rule before and after, to the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from agent import accounts, subscriptions
from agent.accounts import AuditAction
from agent.backtest import Hit, diff
from agent.errors import RuleError
from agent.models import StoredItem, Subscription
from agent.rules import Node, RuleSpec, load_node
from agent.web.admin_subscriptions_noise import State

#: How far back the preview looks.
PREVIEW_DAYS = 30
#: At most this many added (and removed) events are listed; all are counted.
LISTED = 100


@dataclass(frozen=True)
class Change:
    """One event the edit would add or remove, as the page lists it."""

    #: The stored item's id (``/items/<id>``); ``None`` if it is no longer stored.
    item_id: int | None
    title: str
    kind: str
    event: str
    at: datetime


@dataclass(frozen=True)
class Preview:
    """What the edited rule would have done differently over the period."""

    since: datetime
    until: datetime
    added: list[Change]
    removed: list[Change]
    added_count: int
    removed_count: int
    kept: int


def current_node(sub: Subscription) -> Node:
    """The rule the subscription matches with now; ``RuleError`` if it no longer loads."""
    try:
        return load_node(sub.compiled)
    except RuleError:
        # A tree stored by an older version: the rule as written still says it.
        return RuleSpec.model_validate(sub.rule).compile()


def preview(session: Session, sub: Subscription, new: Node, *, now: datetime) -> Preview:
    """Compare ``new`` with the subscription's rule over the last ``PREVIEW_DAYS`` days."""
    since = now - timedelta(days=PREVIEW_DAYS)
    found = diff(session, current_node(sub), new, since=since, until=now)
    shown = found.added[:LISTED] + found.removed[:LISTED]
    ids = _item_ids(session, shown)
    return Preview(
        since=since,
        until=now,
        added=[_change(hit, ids) for hit in found.added[:LISTED]],
        removed=[_change(hit, ids) for hit in found.removed[:LISTED]],
        added_count=len(found.added),
        removed_count=len(found.removed),
        kept=found.kept,
    )


def save_rule(
    session: Session, sub: Subscription, spec: RuleSpec, *, actor: str, now: datetime
) -> Subscription:
    """Store ``spec`` as the subscription's rule and audit the change (caller commits).

    Everything else is kept as it was, a paused or unconfirmed subscription
    stays so; ``pydantic.ValidationError`` if the stored subscription is no
    longer valid input (a channel left without its address).
    """
    before = dict(sub.rule)
    given = subscriptions.to_input(sub).model_copy(update={"rule": spec})
    saved = subscriptions.save(
        session,
        given,
        now=now,
        confirmed=State.of(sub) is State.ACTIVE,
        organisation_id=sub.organisation_id,
    )
    if saved.rule != before:
        accounts.record(
            session,
            actor=actor,
            action=AuditAction.EDITED,
            now=now,
            organisation_id=saved.organisation_id,
            subscription_id=saved.id,
            subject=saved.name,
            before={"rule": before},
            after={"rule": dict(saved.rule)},
        )
    return saved


def _item_ids(session: Session, hits: Sequence[Hit]) -> dict[tuple[str, str], int]:
    """The stored id of each hit's item, by (source, key)."""
    keys = {hit.event.item.key for hit in hits}
    if not keys:
        return {}
    rows = session.exec(
        select(StoredItem.id, StoredItem.source, StoredItem.key).where(
            col(StoredItem.key).in_(keys)
        )
    )
    return {(source, key): item_id for item_id, source, key in rows if item_id is not None}


def _change(hit: Hit, ids: dict[tuple[str, str], int]) -> Change:
    item = hit.event.item
    return Change(
        item_id=ids.get((item.source, item.key)),
        title=item.title,
        kind=item.kind,
        event=hit.event.type,
        at=hit.at,
    )
