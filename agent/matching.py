"""The matcher: keeps every active subscription's rule in the reverse index.

Rules are stored compiled (``Subscription.compiled``), so loading 10⁶ of them
does not re-parse a query. ``sync`` re-indexes only subscriptions whose
``updated_at`` moved, so an edit in another process reaches a running server
at its next poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from agent.models import Event, Subscription
from agent.rules import Engine, Match, RuleSpec, load_node


@dataclass(frozen=True)
class Target:
    """What the outbox needs to know about a matched subscription."""

    subscription_id: int
    channels: tuple[str, ...]
    cadence: str


class Matcher:
    """Every active subscription's rule, indexed; answers "who wants this event?"."""

    def __init__(self) -> None:
        self.engine = Engine()
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
        for start in range(0, len(stale), 500):
            chunk = stale[start : start + 500]
            for sub in session.exec(select(Subscription).where(Subscription.id.in_(chunk))):  # type: ignore[union-attr]
                self._index(sub)

    def _index(self, sub: Subscription) -> None:
        assert sub.id is not None
        node = (
            load_node(sub.compiled) if sub.compiled else RuleSpec.model_validate(sub.rule).compile()
        )
        self.engine.add(sub.id, node)
        self._versions[sub.id] = sub.updated_at
        self._targets[sub.id] = Target(sub.id, tuple(sub.channels), sub.cadence)

    def _drop(self, sid: int) -> None:
        self.engine.remove(sid)
        self._versions.pop(sid, None)
        self._targets.pop(sid, None)

    def match(self, event: Event, now: datetime) -> list[tuple[Target, Match]]:
        """Return every subscription that wants ``event``, with why."""
        return [(self._targets[m.rule_id], m) for m in self.engine.match(event, now)]

    def __len__(self) -> int:
        return len(self._versions)


def match_all(
    matcher: Matcher, events: Sequence[Event], now: datetime
) -> list[list[tuple[Target, Match]]]:
    """Match a batch of events; one result list per event, in order."""
    return [matcher.match(event, now) for event in events]
