"""The matcher: keeps every active subscription's rule in the reverse index.

Rules are stored compiled (``Subscription.compiled``), so loading 10⁶ of them
does not re-parse a query. ``sync`` re-indexes only subscriptions whose
``updated_at`` moved, so an edit in another process reaches a running server
at its next poll. When the first load is a bulk one, the index learns how
common each word is in the newest stored items, so every rule is filed under
its rarest word.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from agent.models import Event, EventType, StoredItem, Subscription
from agent.rules import Engine, Match, RuleSpec, document_frequency, load_node
from agent.schedule import Cadence, Schedule, parse_quiet_hours

#: How many of the newest stored items teach the index which words are rare.
FREQUENCY_SAMPLE = 2000
#: Above this many rules to (re)load at once, the garbage collector is paused.
BULK = 1000


@dataclass(frozen=True)
class Target:
    """What the outbox needs to know about a matched subscription."""

    subscription_id: int
    channels: tuple[str, ...]
    cadence: str
    #: Channels whose cadence differs from ``cadence``.
    cadences: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None
    digest_hour: int | None = None
    quiet_hours: str | None = None

    def schedule(self, channel: str, *, zone: str, hour: int) -> Schedule:
        """This subscription's timing on ``channel``; ``zone`` and ``hour`` are the defaults."""
        quiet = parse_quiet_hours(self.quiet_hours) if self.quiet_hours else None
        return Schedule(
            Cadence(self.cadences.get(channel, self.cadence)),
            ZoneInfo(self.timezone or zone),
            hour if self.digest_hour is None else self.digest_hour,
            quiet,
        )


class Matcher:
    """Every active subscription's rule, indexed; answers "who wants this event?"."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self._versions: dict[int, datetime] = {}
        self._targets: dict[int, Target] = {}

    def sync(self, session: Session) -> None:
        """Bring the index up to date with the subscription table."""
        query = select(Subscription.id, Subscription.updated_at, Subscription.active)
        current = {sid: (at, active) for sid, at, active in session.exec(query) if sid is not None}
        for sid in list(self._versions):
            if sid not in current or not current[sid][1]:
                self._drop(sid)
        stale = [
            sid for sid, (at, active) in current.items() if active and self._versions.get(sid) != at
        ]
        bulk = len(stale) > BULK
        if self.engine is None:
            # Word rarity pays off only for many rules; a handful need no
            # start-up pass over the stored items.
            self.engine = Engine(_frequency(session) if bulk else None)
        with quiet_gc() if bulk else contextlib.nullcontext():
            for start in range(0, len(stale), 500):
                chunk = stale[start : start + 500]
                for sub in session.exec(
                    select(Subscription).where(col(Subscription.id).in_(chunk))
                ):
                    self._index(sub)

    def _index(self, sub: Subscription) -> None:
        assert sub.id is not None
        assert self.engine is not None
        node = (
            load_node(sub.compiled) if sub.compiled else RuleSpec.model_validate(sub.rule).compile()
        )
        self.engine.add(sub.id, node)
        self._versions[sub.id] = sub.updated_at
        self._targets[sub.id] = target_of(sub)

    def _drop(self, sid: int) -> None:
        if self.engine is not None:
            self.engine.remove(sid)
        self._versions.pop(sid, None)
        self._targets.pop(sid, None)

    def match(self, event: Event, now: datetime) -> list[tuple[Target, Match]]:
        """Return every subscription that wants ``event``, with why."""
        if self.engine is None:
            return []
        return [(self._targets[m.rule_id], m) for m in self.engine.match(event, now)]

    def __len__(self) -> int:
        return len(self._versions)


def target_of(sub: Subscription) -> Target:
    """What the outbox needs of ``sub``."""
    assert sub.id is not None
    return Target(
        sub.id,
        tuple(sub.channels),
        sub.cadence,
        dict(sub.cadences or {}),
        sub.timezone,
        sub.digest_hour,
        sub.quiet_hours,
    )


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """Pause the garbage collector during a bulk load, then freeze what was loaded.

    Rule trees live as long as the process and hold no cycles worth
    collecting; left in the collector's care, every full collection walks all
    10⁶ of them, which halves matching speed and doubles start-up time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.freeze()


def _frequency(session: Session) -> dict[str, int]:
    query = select(StoredItem).order_by(col(StoredItem.first_seen_at).desc())
    rows = session.exec(query.limit(FREQUENCY_SAMPLE)).all()
    events = [Event(type=EventType.NEW, item=row.to_item(), dedup_key="new") for row in rows]
    now = max((row.last_seen_at for row in rows), default=None)
    return document_frequency(events, now) if now is not None else {}
