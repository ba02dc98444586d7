"""When a subscription's alerts go out on one channel: cadence, time zone, quiet hours.

Each subscription has a cadence (``immediate``, or a ``daily``/``weekly``
digest at a local hour) and may set another per channel, so a team can get
Telegram at once and a weekly e-mail. Times are the subscriber's own
(``timezone``, Asia/Jerusalem by default); weekly digests go out on Sunday,
the first day of the Israeli working week. In quiet hours (``22-07``: from
22:00 to 07:00 local) immediate alerts wait until the hours end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

#: ``22-07`` or ``22:30-07:00``: from the first time to the second, local.
QUIET_HOURS = re.compile(r"^([01]?\d|2[0-3])(?::([0-5]\d))?-([01]?\d|2[0-3])(?::([0-5]\d))?$")
#: Sunday, in ``datetime.weekday()`` numbering.
SUNDAY = 6


class Cadence(StrEnum):
    """How often a subscription's alerts go out on a channel."""

    IMMEDIATE = "immediate"
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class Schedule:
    """One subscription's timing on one channel."""

    cadence: Cadence
    zone: ZoneInfo
    hour: int
    #: Quiet hours as minutes after local midnight, (start, end); may wrap midnight.
    quiet: tuple[int, int] | None = None

    def due(self, now: datetime) -> datetime:
        """When an alert made at ``now`` should go out."""
        if self.cadence is Cadence.IMMEDIATE:
            return self.after_quiet(now)
        return self.next_digest(now)

    def next_digest(self, now: datetime) -> datetime:
        """The next daily (or, for a weekly cadence, Sunday) digest hour after ``now``."""
        local = now.astimezone(self.zone)
        slot = local.replace(hour=self.hour, minute=0, second=0, microsecond=0)
        if slot <= local:
            slot += timedelta(days=1)
        if self.cadence is Cadence.WEEKLY:
            slot += timedelta(days=(SUNDAY - slot.weekday()) % 7)
        # Through UTC, so a slot across a clock change keeps its wall-clock hour.
        return slot.replace(tzinfo=None).replace(tzinfo=self.zone).astimezone(now.tzinfo)

    def after_quiet(self, now: datetime) -> datetime:
        """``now``, or the end of the quiet hours ``now`` falls in."""
        if self.quiet is None:
            return now
        start, end = self.quiet
        local = now.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        inside = start <= minute < end if start < end else minute >= start or minute < end
        if not inside:
            return now
        wake = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
        if wake <= local:
            wake += timedelta(days=1)
        return wake.replace(tzinfo=None).replace(tzinfo=self.zone).astimezone(now.tzinfo)


def parse_quiet_hours(text: str) -> tuple[int, int]:
    """Parse ``22-07`` or ``22:30-07:00`` into minutes after midnight; ``ValueError`` if not."""
    match = QUIET_HOURS.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r}: write quiet hours as 22-07 or 22:30-07:00 (local time)")
    start = int(match[1]) * 60 + int(match[2] or 0)
    end = int(match[3]) * 60 + int(match[4] or 0)
    if start == end:
        raise ValueError(f"{text!r}: quiet hours must start and end at different times")
    return start, end
