"""Flood control: at most so many immediate alerts per subscriber, channel and hour.

What goes over the cap is not dropped and does not spam: it rolls into the
subscriber's next daily digest (at their digest hour, in their time zone),
which says how many alerts it carries for that reason. Digests themselves,
and channels whose layout is not ``capped`` (feeds), are never held back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlmodel import Session

import notifiers
from agent import outbox
from agent.matching import target_of
from agent.schedule import Cadence

#: The window the cap counts over.
WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class FloodCap:
    """The cap, and the defaults a subscriber's digest hour falls back on."""

    per_hour: int
    zone: str
    hour: int

    def apply(
        self, session: Session, claimed: list[outbox.Claimed], *, owner: str, now: datetime
    ) -> list[outbox.Claimed]:
        """Return the claimed rows that may go now; roll the rest into the next digest."""
        if not claimed:
            return claimed
        sub, channel = claimed[0].subscription, claimed[0].delivery.channel
        schedule = target_of(sub).schedule(channel, zone=self.zone, hour=self.hour)
        if (
            schedule.cadence is not Cadence.IMMEDIATE
            or not notifiers.channel(channel).layout.capped
        ):
            return claimed
        fresh = [c for c in claimed if not c.delivery.rolled_over]
        room = max(
            self.per_hour - outbox.sent_since(session, sub.id or 0, channel, now - WINDOW), 0
        )
        if len(fresh) <= room:
            return claimed
        over = fresh[room:]
        # The subscriber's next daily digest hour, though their cadence is immediate.
        due = replace(schedule, cadence=Cadence.DAILY).next_digest(now)
        outbox.roll_over(session, [c.delivery.id or 0 for c in over], owner=owner, due=due)
        held = {id(c) for c in over}
        return [c for c in claimed if id(c) not in held]
