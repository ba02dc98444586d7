"""Telegram's flood limits, kept on our side so that its 429s stay rare.

Telegram lets a bot send about 30 messages a second over all chats, one a
second to one chat, and 20 a minute to one group or channel; past that it
answers 429 with ``retry_after`` (the Bot FAQ, as cited in
shared/docs/performance.md §1). ``FloodLimits`` keeps the time of each send in
a sliding window per limit and gives each message the earliest moment at which
no window of the limit's length would hold more than the limit: bursts up to
the limit go at once, and no window is ever over it. A message Telegram
refused with 429 was not delivered and gives its slot back.

PTB's ``AIORateLimiter`` was not used: it has no per-chat limit, its leaky
buckets let up to twice the limit through within one window, and with
``max_retries=0`` it logs a traceback for every 429.
"""

from __future__ import annotations

import bisect
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

#: Added to every window: requests reach Telegram a little bunched up (network
#: and scheduling jitter), and a window that looks full here may not be there.
MARGIN = 0.05


@dataclass(frozen=True)
class Slot:
    """A moment reserved for one message to one chat."""

    chat_id: str
    #: When, on the limiter's clock.
    at: float
    #: Seconds from the reservation until then.
    wait: float


@dataclass(frozen=True)
class Limit:
    """At most ``count`` messages in any ``period`` seconds."""

    count: int
    period: float


#: About 30 messages a second in all (the Bot FAQ's "or so": no more is promised).
OVERALL = Limit(30, 1.0)
#: "Avoid sending more than one message per second" to one chat.
PER_CHAT = Limit(1, 1.0)
#: "Not more than 20 messages per minute to the same group" (channels alike).
PER_GROUP = Limit(20, 60.0)


def is_group(chat_id: str) -> bool:
    """Whether a chat id names a group, supergroup or channel (negative, or ``@name``)."""
    return chat_id.startswith(("-", "@"))


class _Window:
    """The times of the sends under one limit that may still count, oldest first."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.times: deque[float] = deque()

    def earliest(self, now: float) -> float:
        """The first moment a new send fits: never before the last one (times stay sorted)."""
        if not self.times:
            return now
        start = max(now, self.times[-1])
        if len(self.times) < self.limit.count:
            return start
        return max(start, self.times[-self.limit.count] + self.limit.period + MARGIN)

    def add(self, when: float, now: float) -> None:
        """Count a send at ``when``; forget those a whole window before ``now``."""
        self.times.append(when)
        while self.times[0] + self.limit.period + MARGIN <= now:
            self.times.popleft()


class FloodLimits:
    """Sliding windows over all chats, per chat and per group; one per bot and process."""

    def __init__(
        self,
        *,
        overall: Limit = OVERALL,
        per_chat: Limit = PER_CHAT,
        per_group: Limit = PER_GROUP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._overall = _Window(overall)
        self._per_chat, self._per_group = per_chat, per_group
        self._chats: dict[str, _Window] = {}
        self._groups: dict[str, _Window] = {}
        self._clock = clock

    def delay(self, chat_id: str) -> float:
        """Seconds until a message to ``chat_id`` may go, reserving nothing."""
        now = self._clock()
        return self._slot(chat_id, now) - now

    def take(self, chat_id: str) -> Slot:
        """Reserve the next slot for a message to ``chat_id``; its ``wait`` is how long until."""
        now = self._clock()
        when = self._slot(chat_id, now)
        for window in self._windows(chat_id):
            window.add(when, now)
        self._forget(now)
        return Slot(chat_id, when, when - now)

    def settle(self, slot: Slot) -> None:
        """Count a sent message at the moment its answer came, no earlier than Telegram did.

        A request reaches Telegram some time after its slot (the event loop, the
        network, a busy machine); counting it from its answer keeps the next one
        a full window after it there too, whatever that delay was.
        """
        now = self._clock()
        # The chat's and group's windows only: the overall one spreads over many
        # chats at once, and the margin is enough for it.
        for window in self._windows(slot.chat_id)[1:]:
            with contextlib.suppress(ValueError):
                window.times.remove(slot.at)
            bisect.insort(window.times, max(now, slot.at))

    def release(self, slot: Slot) -> None:
        """Give a slot back: Telegram refused that message (429), so it counted for nothing."""
        for window in self._windows(slot.chat_id):
            with contextlib.suppress(ValueError):
                window.times.remove(slot.at)

    def _slot(self, chat_id: str, now: float) -> float:
        return max(window.earliest(now) for window in self._windows(chat_id))

    def _windows(self, chat_id: str) -> list[_Window]:
        windows = [self._overall, _get(self._chats, chat_id, self._per_chat)]
        if is_group(chat_id):
            windows.append(_get(self._groups, chat_id, self._per_group))
        return windows

    def _forget(self, now: float) -> None:
        # Chats whose windows have emptied need no memory; checked only when many
        # are kept, so a send costs nothing extra in the usual case.
        for table in (self._chats, self._groups):
            if len(table) > 1024:
                for key in [k for k, w in table.items() if _idle(w, now)]:
                    del table[key]


def _get(table: dict[str, _Window], chat_id: str, limit: Limit) -> _Window:
    window = table.get(chat_id)
    if window is None:
        window = table[chat_id] = _Window(limit)
    return window


def _idle(window: _Window, now: float) -> bool:
    return not window.times or window.times[-1] + window.limit.period + MARGIN < now
